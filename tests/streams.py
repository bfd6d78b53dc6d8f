"""Real stream servers for tests: HTTP MJPEG served by ffmpeg on a loopback port.

Stopping the server and starting it again on the same port is a real outage and recovery, as a
camera that drops off the network and comes back.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest


def require_ffmpeg() -> str:
    """The ffmpeg executable, or skip the test."""
    found = shutil.which("ffmpeg")
    if found is None:
        pytest.skip("ffmpeg is not installed (apt-get install ffmpeg)")
    return found


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def small_clip(source: Path, out: Path, seconds: float = 8.0, width: int = 384) -> Path:
    """A short, small copy of a video (fast to serve and to analyse)."""
    subprocess.run(
        [require_ffmpeg(), "-loglevel", "error", "-y", "-i", str(source), "-t", str(seconds),
         "-vf", f"scale={width}:-2", "-c:v", "libx264", "-preset", "ultrafast", "-g", "10",
         "-pix_fmt", "yuv420p", "-an", str(out)],
        check=True, timeout=120,
    )  # fmt: skip
    return out


class MjpegServer:
    """``ffmpeg -re -stream_loop -1 ... -f mpjpeg -listen 1 http://127.0.0.1:PORT/cam.mjpg``.

    ffmpeg serves one client at real time; it is restarted whenever it exits (its client left),
    until :meth:`stop`. :meth:`outage` stops it for real until :meth:`resume`.
    """

    def __init__(self, clip: Path, port: int | None = None, fps: int = 10) -> None:
        self.clip = clip
        self.port = port or free_port()
        self.fps = fps
        self.url = f"http://127.0.0.1:{self.port}/cam.mjpg"
        self._process: subprocess.Popen[bytes] | None = None
        self._down = True

    def start(self) -> MjpegServer:
        """Start serving; returns self."""
        self._down = False
        self._spawn()
        return self

    def keep_alive(self) -> None:
        """Restart ffmpeg if it exited while it should be serving (its client reconnected)."""
        if not self._down and (self._process is None or self._process.poll() is not None):
            self._spawn()

    def outage(self) -> None:
        """Stop serving (a camera that drops off the network)."""
        self._down = True
        self._kill()

    def resume(self) -> None:
        """Serve again on the same URL."""
        self.start()

    def stop(self) -> None:
        """Stop for good."""
        self.outage()

    def freeze(self) -> None:
        """Keep the connection open but send nothing (a camera that hangs)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """Carry on sending after :meth:`freeze`."""
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def _spawn(self) -> None:
        self._kill()
        self._process = subprocess.Popen(
            [require_ffmpeg(), "-loglevel", "error", "-re", "-stream_loop", "-1",
             "-i", str(self.clip), "-r", str(self.fps), "-c:v", "mjpeg", "-q:v", "6",
             "-f", "mpjpeg", "-listen", "1", self.url],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            # A test connection would use up ffmpeg's single client: look for the listening
            # socket instead.
            if _listening(self.port):
                return
            time.sleep(0.05)
        raise RuntimeError(f"ffmpeg did not start listening on {self.url}")

    def _kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(10)
        self._process = None


def _listening(port: int) -> bool:
    """True when something listens on the loopback port (read from /proc, no connection)."""
    wanted = f":{port:04X}"
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1].endswith(wanted) and fields[3] == "0A":  # 0A: LISTEN
                return True
    return False


def require_rtsp_server() -> Path:
    """The system Python that has GStreamer's RTSP server bindings, or skip the test."""
    python = Path("/usr/bin/python3")
    probe = (
        "import gi; gi.require_version('GstRtspServer', '1.0'); "
        "from gi.repository import GstRtspServer"
    )
    if (
        not python.is_file()
        or subprocess.run([python, "-c", probe], capture_output=True).returncode
    ):
        pytest.skip("GStreamer's RTSP server is not installed (see .ci/run for the packages)")
    return python


class RtspServer:
    """An RTSP camera (``tests/rtsp_server.py``: GStreamer's server, H.264 at real time) at
    ``rtsp://127.0.0.1:PORT/cam1``. :meth:`outage` kills it; :meth:`resume` serves the clip again
    from its start on the same URL, as a camera that reboots."""

    def __init__(self, clip: Path, port: int | None = None) -> None:
        self.clip = clip
        self.port = port or free_port()
        self.url = f"rtsp://127.0.0.1:{self.port}/cam1"
        self._python = require_rtsp_server()
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> RtspServer:
        """Start serving once the server says it listens; returns self."""
        self._process = subprocess.Popen(
            [self._python, str(Path(__file__).with_name("rtsp_server.py")), str(self.clip),
             str(self.port)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert self._process.stdout is not None
        if self._process.stdout.readline().strip() != "ready":
            self.stop()
            raise RuntimeError(f"the RTSP server did not start on {self.url}")
        return self

    def outage(self) -> None:
        """Stop serving (a camera that drops off the network)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(10)
        self._process = None

    def resume(self) -> None:
        """Serve again on the same URL."""
        self.start()

    def stop(self) -> None:
        """Stop for good."""
        self.outage()
