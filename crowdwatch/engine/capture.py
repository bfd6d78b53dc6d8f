"""Capture that never falls behind live: a thread reads a camera and keeps only its newest frame.

A stream that drops (the read fails, or no frame arrives for ``read_timeout_s``) is reopened with
exponential backoff, forever, until the grabber is stopped: a camera that comes back later
resumes by itself. A video file stands in for a camera when testing or benchmarking: it is
played at its own frame rate (and looped), like a live stream.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from crowdwatch.sources.video import STREAM_PREFIXES, DeviceCrashed, _redact, probe_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CaptureOptions:
    """How a camera is read.

    Attributes:
        open_timeout_s, read_timeout_s: FFmpeg's limits for opening a stream and for one read.
        backoff_s: first wait before reopening a dropped stream; doubles up to ``max_backoff_s``.
        loop_files: play a video file again from the start when it ends (a simulated camera).
        pace_files: play a video file at its frame rate, like a live camera.
        file_fps: the true frame rate of a video file whose container states a wrong one.
        every_frame: hand on every frame of a video file, each when the analysis has taken the
            one before, stamped with its video time after the file's start (no pacing, no
            loop, nothing skipped): a recording replayed through the engine, frame for frame.
    """

    open_timeout_s: float = 5.0
    read_timeout_s: float = 5.0
    backoff_s: float = 0.5
    max_backoff_s: float = 5.0
    loop_files: bool = True
    pace_files: bool = True
    file_fps: float | None = None
    every_frame: bool = False


@dataclass(frozen=True, kw_only=True)
class Grab:
    """One captured frame: its image, the wall time it was captured (epoch seconds), its number
    in the stream (``sequence``, from 1) and its 0-based index in the file or stream."""

    image: np.ndarray
    captured: float
    sequence: int

    @property
    def index(self) -> int:
        """0-based position of the frame among those read (a file's frame number)."""
        return self.sequence - 1


class FrameGrabber:
    """Reads one camera on its own thread and holds the newest frame.

    Attributes (read them any time):
        state: ``starting``, ``live``, ``reconnecting``, ``stopped`` or ``failed`` (a file that
            does not exist or cannot be decoded, which will not come back by retrying).
        error: the last problem, or None.
        frames_read: frames read since start; reconnects: times the stream came back.

    Example:
        >>> grabber = FrameGrabber("rtsp://127.0.0.1:8554/cam1").start()  # doctest: +SKIP
        >>> grab = grabber.newest_after(-1, timeout_s=5)  # doctest: +SKIP
        >>> grabber.stop()  # doctest: +SKIP
    """

    def __init__(self, source: str | int, options: CaptureOptions | None = None) -> None:
        self.source = source
        self.name = f"webcam:{source}" if isinstance(source, int) else _redact(str(source))
        self.options = options or CaptureOptions()
        self.state = "starting"
        self.error: str | None = None
        self.frames_read = 0
        self.reconnects = 0
        self.last_frame_at = time.monotonic()  # monotonic time of the newest frame
        self._newest: Grab | None = None
        self._taken = 0  # the newest sequence handed to the analysis
        self._started_at = time.time()
        self._condition = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"grab-{self.name}", daemon=True)
        self._capture: cv2.VideoCapture | None = None

    @property
    def is_file(self) -> bool:
        """True when the source is a local video file (a simulated camera)."""
        if isinstance(self.source, int) or str(self.source).isdigit():
            return False
        return not str(self.source).lower().startswith(STREAM_PREFIXES)

    def start(self) -> FrameGrabber:
        """Start reading; returns self."""
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop reading and release the camera."""
        self._stop.set()
        with self._condition:
            self._condition.notify_all()
        self._thread.join(timeout_s)
        self.state = "stopped"

    def newest_after(self, sequence: int, timeout_s: float) -> Grab | None:
        """The newest frame if it is newer than ``sequence``, waiting up to ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while True:  # a frame published just before the stop is still handed on
                if self._newest is not None and self._newest.sequence > sequence:
                    self._taken = max(self._taken, self._newest.sequence)
                    self._condition.notify_all()
                    return self._newest
                if self._stop.is_set():
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._condition.wait(remaining)

    # -- the reading thread -------------------------------------------------------------------

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            capture = self._open()
            if capture is None:
                if self.state == "failed":
                    return
                self.state = "reconnecting" if self.frames_read or attempt else "starting"
                delay = min(self.options.backoff_s * 2**attempt, self.options.max_backoff_s)
                attempt += 1
                self._stop.wait(delay)
                continue
            if self.frames_read:
                self.reconnects += 1
            attempt = 0
            self._read_until_it_drops(capture)
            capture.release()
            if not self._stop.is_set() and self.state != "failed":
                self.state = "reconnecting"
                log.warning("%s: stream dropped (%s); reconnecting", self.name, self.error)
        self.state = "stopped"

    def _open(self) -> cv2.VideoCapture | None:
        if self.is_file:
            path = Path(str(self.source))
            if not path.is_file():
                self._fail(f"video file not found: {path}")
                return None
            capture = cv2.VideoCapture(str(path))
        elif isinstance(self.source, int) or str(self.source).isdigit():
            # Tried in a child process first: a crash or hang there fails this camera only.
            try:
                problem = probe_device(int(self.source))
            except DeviceCrashed as crash:
                self._fail(str(crash))
                return None
            if problem is not None:
                self.error = problem
                return None
            capture = cv2.VideoCapture(int(self.source))
        else:
            timeouts = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                int(self.options.open_timeout_s * 1000),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                int(self.options.read_timeout_s * 1000),
            ]
            capture = cv2.VideoCapture(str(self.source), cv2.CAP_FFMPEG, timeouts)
        if capture.isOpened():
            return capture
        capture.release()
        if self.is_file:
            self._fail(f"cannot open video file {self.source}: not a video, or corrupt")
        else:
            self.error = f"cannot open {self.name}: unreachable or not a video stream"
        return None

    def _read_until_it_drops(self, capture: cv2.VideoCapture) -> None:
        fps = self.options.file_fps or capture.get(cv2.CAP_PROP_FPS)
        replay = self.is_file and self.options.every_frame
        paced = self.is_file and self.options.pace_files and not replay
        period = 1.0 / fps if paced and 0 < fps < 1000 else 0.0
        next_due = time.monotonic()
        read_in_this_connection = 0
        while not self._stop.is_set():
            ok, image = capture.read()
            if not ok or image is None:
                if (
                    self.is_file
                    and read_in_this_connection
                    and self.options.loop_files
                    and not replay
                ):
                    capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    read_in_this_connection = 0
                    continue
                if self.is_file and not read_in_this_connection:
                    self._fail(f"video file {self.source} has no readable frames (corrupt)")
                elif self.is_file:
                    self.state = "stopped"
                    self._stop.set()
                else:
                    self.error = "the stream ended or a read timed out"
                return
            read_in_this_connection += 1
            if replay:
                frame_s = (read_in_this_connection - 1) / (fps if 0 < fps < 1000 else 25.0)
                self._hand_on(image, self._started_at + frame_s)
                continue
            self._publish(image)
            if period:
                next_due += period
                self._stop.wait(max(0.0, next_due - time.monotonic()))
                next_due = max(next_due, time.monotonic() - period)

    def _hand_on(self, image: np.ndarray, captured: float) -> None:
        """Publish a replayed frame once the analysis has taken the one before."""
        with self._condition:
            while self._taken < self.frames_read and not self._stop.is_set():
                self._condition.wait(0.5)
        self._publish(image, captured)

    def _publish(self, image: np.ndarray, captured: float | None = None) -> None:
        with self._condition:
            self.frames_read += 1
            self.last_frame_at = time.monotonic()
            when = time.time() if captured is None else captured
            self._newest = Grab(image=image, captured=when, sequence=self.frames_read)
            self.state = "live"
            self.error = None
            self._condition.notify_all()

    def _fail(self, error: str) -> None:
        self.state = "failed"
        self.error = error
        log.error("%s: %s", self.name, error)
