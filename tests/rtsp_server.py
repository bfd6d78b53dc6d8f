"""A real RTSP camera for tests: GStreamer's RTSP server serving an H.264 MP4 at real time.

Run with the system Python, which has the GStreamer bindings (``python3-gi``,
``gir1.2-gst-rtsp-server-1.0``); they cannot be installed into a virtual environment::

    /usr/bin/python3 tests/rtsp_server.py CLIP.mp4 PORT

It serves ``rtsp://127.0.0.1:PORT/cam1``, prints ``ready`` once it listens, and runs until killed.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    clip, port = sys.argv[1], sys.argv[2]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    # identity sync=true paces the file's frames to their timestamps, as a live camera sends them.
    factory.set_launch(
        f"( filesrc location={clip} ! qtdemux ! h264parse ! identity sync=true "
        "! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam1", factory)
    if server.attach(None) == 0:
        print(f"cannot listen on port {port}", file=sys.stderr, flush=True)
        return 1
    print("ready", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
