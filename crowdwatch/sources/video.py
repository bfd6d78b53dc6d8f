"""Frame sources: video files, image folders, RTSP/HTTP streams and webcams, all yielding Frames."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from crowdwatch.errors import SourceError
from crowdwatch.types import Frame

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
# The largest image or video frame decoded, in pixels (8K UHD is 33 million): checked from the
# file's header before decoding, so a small file declaring 20000x20000 never takes gigabytes.
MAX_PIXELS = 40_000_000
# A video file whose frames end before this share of the container's frame count (less two
# frames of slack) is reported as ended early: truncated, or unreadable from some point on.
COMPLETE_SHARE = 0.99
STREAM_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://")


# A webcam index is opened in a child process first: a driver fault or a bad index can crash
# (SIGSEGV inside V4L2) or hang OpenCV's opener, which must take down that camera only.
DEVICE_PROBE_TIMEOUT_S = 15.0
_DEVICE_PROBE = (
    "import sys, cv2\n"
    "capture = cv2.VideoCapture(int(sys.argv[1]))\n"
    "ok = capture.isOpened() and capture.read()[0]\n"
    "capture.release()\n"
    "sys.exit(0 if ok else 3)\n"
)


class DeviceCrashed(SourceError):
    """Opening a device crashed or hung the opener (tried in a child process): retrying will
    not help, so the camera is failed with this reason."""


def probe_device(index: int, timeout_s: float | None = None) -> str | None:
    """Try to open webcam ``index`` in a child process; None when it opens and gives a frame,
    else why not.

    Raises:
        DeviceCrashed: the opener crashed (a signal) or did not finish within ``timeout_s``.
    """
    timeout_s = DEVICE_PROBE_TIMEOUT_S if timeout_s is None else timeout_s
    environment = {**os.environ, "OPENCV_LOG_LEVEL": "OFF", "OPENCV_VIDEOIO_DEBUG": "0"}
    try:
        done = subprocess.run(
            [sys.executable, "-c", _DEVICE_PROBE, str(index)],
            capture_output=True,
            timeout=timeout_s,
            env=environment,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise DeviceCrashed(
            f"opening webcam:{index} hung (no answer within {timeout_s:g} s); camera failed"
        ) from error
    except OSError as error:
        return f"cannot test webcam:{index}: {error}"
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
        raise DeviceCrashed(f"opening webcam:{index} crashed the video driver ({name})")
    if done.returncode != 0:
        return f"cannot open webcam:{index}: no such device, busy, or gives no frames"
    return None


class VideoSource:
    """Base of every source: iterate it to get :class:`Frame` objects in order.

    Attributes:
        name: printable name (path, URL or ``webcam:N``).
        fps: nominal frames per second (the container's rate for files).
        frame_count: number of frames when known (files, folders), else None.
        is_live: True for streams and webcams, whose time is wall-clock time.
    """

    name: str
    fps: float
    frame_count: int | None = None
    is_live: bool = False

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the underlying device or file."""

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VideoFileSource(VideoSource):
    """A video file; timestamps are video time: frame index / fps (the container's, unless the
    true capture rate is given)."""

    def __init__(self, path: Path, fps: float | None = None) -> None:
        if not path.exists():
            raise SourceError(f"video file not found: {path}")
        if path.stat().st_size == 0:
            raise SourceError(f"video file is empty: {path}")
        self.name = str(path)
        self._capture = cv2.VideoCapture(str(path))
        if not self._capture.isOpened():
            raise SourceError(f"cannot open video file {path}: not a video, or corrupt")
        width = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        try:
            check_pixels(width, height, f"video file {path}")
        except SourceError:
            self._capture.release()
            raise
        self.ended_early: str | None = None
        ok, first = self._capture.read()
        if not ok or first is None:
            self._capture.release()
            raise SourceError(f"video file {path} has no readable frames (empty or corrupt)")
        self._first: np.ndarray | None = first
        stated = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps or (float(stated) if stated and 0 < stated < 1000 else 25.0)
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 else None

    @property
    def first_frame(self) -> np.ndarray:
        """The first frame, read when the file was opened (to prove it decodes)."""
        if self._first is None:
            raise SourceError(f"{self.name}: the first frame was already consumed")
        return self._first

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        image = self._first
        while image is not None:
            yield Frame(image=image, index=index, time_s=index / self.fps, source=self.name)
            self._first = None
            index += 1
            ok, image = self._capture.read()
            if not ok:
                image = None
        if self.frame_count and index < min(
            self.frame_count * COMPLETE_SHARE, self.frame_count - 2
        ):
            self.ended_early = (
                f"video file {self.name} ended early: {index} of the {self.frame_count} frames "
                f"its container states could be read (truncated, or corrupt from frame {index})"
            )
            log.info("%s", self.ended_early)

    def close(self) -> None:
        self._capture.release()


class ImageFolderSource(VideoSource):
    """A folder of still images taken in name order, ``fps`` apart (1 per second by default)."""

    def __init__(self, folder: Path, fps: float = 1.0) -> None:
        self.name = str(folder)
        self.fps = fps
        self._paths = sorted(
            (p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
            key=lambda p: _natural_key(p.name),
        )
        if not self._paths:
            raise SourceError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder {folder}")
        self.frame_count = len(self._paths)

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        unreadable: list[str] = []
        for path in self._paths:
            try:
                image = read_image(path)
            except SourceError as error:
                log.warning("skipping %s", error)
                unreadable.append(path.name)
                continue
            yield Frame(image=image, index=index, time_s=index / self.fps, source=str(path))
            index += 1
        if index == 0 and unreadable:
            shown = ", ".join(unreadable[:3]) + (" ..." if len(unreadable) > 3 else "")
            raise SourceError(
                f"none of the {len(unreadable)} image(s) in folder {self.name} could be read "
                f"(not images, corrupt or too large: {shown})"
            )


class LiveSource(VideoSource):
    """An RTSP/HTTP stream or a webcam; reconnects with backoff when the stream drops.

    Timestamps are seconds since the source was opened (monotonic clock).
    """

    is_live = True

    def __init__(
        self,
        target: str | int,
        open_timeout_s: float = 10.0,
        max_reconnects: int = 5,
        backoff_s: float = 1.0,
    ) -> None:
        self._target = target
        self.name = f"webcam:{target}" if isinstance(target, int) else _redact(str(target))
        self._timeout_ms = int(open_timeout_s * 1000)
        self._max_reconnects = max_reconnects
        self._backoff_s = backoff_s
        self._capture = self._open()
        if self._capture is None:
            kind = "webcam" if isinstance(target, int) else "stream"
            raise SourceError(f"cannot open {kind} {self.name}: unreachable or not a video source")
        width = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        try:
            check_pixels(width, height, self.name)
        except SourceError:
            self._capture.release()
            raise
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else 25.0
        self.reconnects = 0

    def _open(self) -> cv2.VideoCapture | None:
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            self._timeout_ms,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            self._timeout_ms,
        ]
        if isinstance(self._target, int):
            if probe_device(self._target) is not None:  # raises DeviceCrashed: crash or hang
                return None
            capture = cv2.VideoCapture(self._target)
        else:
            capture = cv2.VideoCapture(self._target, cv2.CAP_FFMPEG, params)
        if capture.isOpened():
            return capture
        capture.release()
        return None

    def __iter__(self) -> Iterator[Frame]:
        start = time.monotonic()
        index = 0
        while True:
            ok, image = self._capture.read() if self._capture is not None else (False, None)
            if ok and image is not None:
                yield Frame(image, index, time.monotonic() - start, self.name)
                index += 1
                continue
            if not self._reconnect():
                log.warning(
                    "%s: gave up after %d reconnect attempts", self.name, self._max_reconnects
                )
                return

    def _reconnect(self) -> bool:
        if self._capture is not None:
            self._capture.release()
        for attempt in range(self._max_reconnects):
            delay = self._backoff_s * 2**attempt
            log.warning("%s: stream dropped, reconnecting in %.1f s", self.name, delay)
            time.sleep(delay)
            self._capture = self._open()
            if self._capture is not None:
                self.reconnects += 1
                return True
        self._capture = None
        return False

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()


def open_source(
    spec: str | int | Path, image_fps: float = 1.0, file_fps: float | None = None
) -> VideoSource:
    """Open a video file, an image folder, a stream URL or a webcam index.

    ``file_fps`` replaces a video file's stated frame rate (a recording whose container is wrong)
    and an image folder's ``image_fps``; live sources keep wall-clock time.

    Raises:
        SourceError: naming the source and why it cannot be read.

    Example:
        >>> with open_source("sample_videos/pets2009_s2l1.mp4") as source:  # doctest: +SKIP
        ...     first = next(iter(source))
    """
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        return LiveSource(int(spec))
    text = str(spec)
    if text.lower().startswith(STREAM_PREFIXES):
        return LiveSource(text)
    path = Path(text).expanduser()
    if path.is_dir():
        return ImageFolderSource(path, fps=file_fps or image_fps)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise SourceError(f"{path} is a single image; use 'crowdwatch count' for still images")
    return VideoFileSource(path, fps=file_fps)


def check_pixels(width: int, height: int, what: str) -> None:
    """Refuse a frame of more than ``MAX_PIXELS`` pixels (or a non-positive size)."""
    if width * height > MAX_PIXELS:
        raise SourceError(
            f"{what} is {width}x{height} ({width * height / 1e6:.0f} million pixels), more "
            f"than the {MAX_PIXELS / 1e6:.0f} million pixel limit"
        )


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) an image file declares in its header, read without decoding it.

    Raises:
        SourceError: not an image crowdwatch reads, or corrupt.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return image.size
    except Image.DecompressionBombError:
        return (MAX_PIXELS + 1, 1)  # Pillow's own bomb guard: far over the limit
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise SourceError(f"cannot read image {path}: not an image, or corrupt") from error
    except ImportError as error:  # ultralytics, once imported, patches Image.open with a
        # HEIF fallback that needs an optional module: the file is still not an image we read
        raise SourceError(f"cannot read image {path}: not an image, or corrupt") from error


def read_image(path: Path) -> np.ndarray:
    """Read one still image as BGR, or raise a SourceError naming the file.

    The size in the file's header is checked against ``MAX_PIXELS`` before it is decoded.
    """
    if not path.is_file():
        raise SourceError(f"image not found: {path}")
    width, height = image_size(path)
    check_pixels(width, height, f"image {path}")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SourceError(f"cannot read image {path}: not an image, or corrupt")
    check_pixels(image.shape[1], image.shape[0], f"image {path}")
    return image


def _natural_key(name: str) -> list[object]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _redact(url: str) -> str:
    """Hide a password in ``rtsp://user:pass@host`` so it never reaches logs or outputs."""
    return re.sub(r"(//[^/:@]+):[^@/]*@", r"\1:***@", url)
