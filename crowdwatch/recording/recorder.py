"""Recording: one camera's analysed frames as video segments, plus heat-map snapshots.

Files live under ``root/<camera>/`` and are indexed in the store by time, so replay finds them
by camera and time range. A segment is written as ``*.partial.mp4`` and renamed when complete,
with its frames' times in a ``.times.json`` beside it; a crash loses at most the open segment.

A disk quota (bytes per camera) is kept by deleting the oldest files (or, with
``on_full="stop"``, by stopping recording); either way the camera's analysis goes on and the
problem is reported in :attr:`CameraRecorder.error`.

A live preview (``live.jpg``, ``live.heat.npz``, ``live.json``) of the latest frame is kept in
the camera's folder, overwritten about once a second and not indexed, so the console's live wall
is seconds old rather than a segment old.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from crowdwatch.errors import UnsafePathError
from crowdwatch.paths import confined
from crowdwatch.store.records import RecordingEntry
from crowdwatch.store.sql import SqlStore

log = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".partial.mp4"
SNAPSHOT_MAX_WIDTH = 320
DENSITY_MAX_WIDTH = 128  # per-frame density kept with each segment (a few KB a frame)
# The live preview's files in a camera's folder (see :meth:`CameraRecorder._write_preview`).
LIVE_IMAGE = "live.jpg"
LIVE_HEAT = "live.heat.npz"
LIVE_INFO = "live.json"
LIVE_JPEG_QUALITY = 80


@dataclass(frozen=True)
class RecordingOptions:
    """What and how much to record.

    Attributes:
        root: folder of the recordings (a folder per camera inside).
        segment_s: length of one video segment.
        fps: frame rate written into the segments (the analysis rate; replay uses real times).
        snapshot_every_s: how often the heat map is saved.
        quota_bytes: disk space one camera's recordings may take (None: no limit).
        min_free_bytes: stop writing when the disk has less free space than this.
        on_full: ``delete_oldest`` (a ring buffer) or ``stop`` when the quota is reached.
        max_width: frames wider than this are scaled down before recording.
        preview_every_s: how often the live preview is refreshed (0: no preview).
    """

    root: Path
    segment_s: float = 60.0
    fps: float = 2.0
    snapshot_every_s: float = 10.0
    quota_bytes: int | None = 2 * 1024**3
    min_free_bytes: int = 200 * 1024**2
    on_full: Literal["delete_oldest", "stop"] = "delete_oldest"
    max_width: int = 1280
    preview_every_s: float = 1.0


class _Segment:
    """One video segment being written."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int], start: float) -> None:
        self.final_path = path
        self.partial_path = path.with_name(path.stem + PARTIAL_SUFFIX)
        self.start = start
        self.times: list[float] = []
        self.densities: list[np.ndarray] = []  # each frame's own people per pixel, reduced
        self.shape: tuple[int, int] = (0, 0)
        self.writer = cv2.VideoWriter(
            str(self.partial_path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size
        )
        if not self.writer.isOpened():
            raise OSError(f"cannot write video segment {self.partial_path}")
        self.size = size

    def write(self, image: np.ndarray, when: float, density: np.ndarray | None = None) -> None:
        self.writer.write(image)
        self.times.append(when)
        if density is not None:
            self.shape = density.shape[:2]
            self.densities.append(shrink_heat(density, DENSITY_MAX_WIDTH).astype(np.float16))

    def finish(self) -> int:
        """Close, write the frame times (and, when every frame came with one, each frame's
        reduced density), rename into place; returns bytes on disk."""
        self.writer.release()
        times_path = times_path_of(self.final_path)
        temporary = times_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.times), encoding="utf-8")
        os.replace(temporary, times_path)
        size = times_path.stat().st_size
        if self.densities and len(self.densities) == len(self.times):
            path = density_path_of(self.final_path)
            buffer = io.BytesIO()
            np.savez_compressed(
                buffer,
                frames=np.stack(self.densities),
                times=np.asarray(self.times),
                shape=np.asarray(self.shape),
            )
            _replace_bytes(path, buffer.getvalue())
            size += path.stat().st_size
        os.replace(self.partial_path, self.final_path)
        return self.final_path.stat().st_size + size


def times_path_of(segment: Path) -> Path:
    """The file holding a segment's frame times."""
    return segment.with_suffix(".times.json")


def density_path_of(segment: Path) -> Path:
    """The file holding a segment's per-frame reduced density maps (``frames``: (N, h, w)
    float16 people per pixel, ``times``, ``shape``: the analysed frame's height and width)."""
    return segment.with_suffix(".density.npz")


def load_segment_density(path: Path, when: float, max_offset_s: float = 1.0):
    """The reduced density of the recorded frame nearest ``when`` in a segment's density file,
    with the frame's (height, width) and its time; None when there is none that near."""
    try:
        with np.load(path) as data:
            times = data["times"]
            if not len(times):
                return None
            index = int(np.argmin(np.abs(times - when)))
            if abs(float(times[index]) - when) > max_offset_s:
                return None
            shape = tuple(int(v) for v in data["shape"])
            return data["frames"][index].astype(np.float32), shape, float(times[index])
    except (OSError, ValueError, KeyError):
        return None


class CameraRecorder:
    """Records one camera. Call :meth:`add` with each analysed frame, :meth:`close` at the end.

    Never raises from :meth:`add`: a recording problem (disk full, quota, a writer error) stops
    or limits recording, is logged, and is kept in :attr:`error` for the camera's health.

    Example:
        >>> options = RecordingOptions(Path("rec"))
        >>> recorder = CameraRecorder("gate", options, store)  # doctest: +SKIP
        >>> recorder.add(frame.image, time.time(), result.heat, result.estimate)  # doctest: +SKIP
    """

    def __init__(self, camera: str, options: RecordingOptions, store: SqlStore) -> None:
        self.camera = camera
        self.options = options
        self.store = store
        self.folder = Path(options.root) / camera
        self.error: str | None = None
        self.enabled = True
        self._segment: _Segment | None = None
        self._last_snapshot = -float("inf")
        self._last_preview = -float("inf")
        self._preview_failed = False
        self.folder.mkdir(parents=True, exist_ok=True)
        self._clean_partial_files()

    def add(
        self,
        image: np.ndarray,
        when: float,
        heat: np.ndarray | None = None,
        density: np.ndarray | None = None,
    ) -> None:
        """Record one frame taken at wall time ``when`` (and the heat map, when one is due);
        with ``density`` (the frame's own people per pixel) the segment keeps it reduced, so a
        replayed frame shows its own people.

        ``image`` is recorded as given: a run that hides people passes the pixelated picture
        (see :mod:`crowdwatch.pipeline.outputs`, where privacy is decided).

        The live preview is refreshed even after recording stopped (quota, disk): it takes a
        fixed few hundred kilobytes and keeps the live wall live while the analysis goes on.
        """
        preview_due = self._preview_due(when)
        if not (self.enabled or preview_due):
            return
        image = _fit_width(image, self.options.max_width)
        if preview_due:
            self._write_preview(image, when, heat)
        if not self.enabled:
            return
        try:
            self._write_frame(image, when, density)
            if heat is not None and when - self._last_snapshot >= self.options.snapshot_every_s:
                self._save_snapshot(heat, when)
        except OSError as error:
            self._stop_recording(f"recording failed: {error}")

    def close(self) -> None:
        """Finish the open segment."""
        try:
            self._finish_segment()
        except OSError as error:
            self._stop_recording(f"recording failed at close: {error}")

    # -- segments ------------------------------------------------------------------------------

    def _write_frame(
        self, image: np.ndarray, when: float, density: np.ndarray | None = None
    ) -> None:
        size = (image.shape[1], image.shape[0])
        segment = self._segment
        if segment is not None and (
            when - segment.start >= self.options.segment_s or segment.size != size
        ):
            self._finish_segment()
            segment = None
        if segment is None:
            self._check_space()
            if not self.enabled:
                return
            segment = _Segment(self._path_for(when, ".mp4"), self.options.fps, size, when)
            self._segment = segment
        segment.write(image, when, density)

    def _finish_segment(self) -> None:
        segment, self._segment = self._segment, None
        if segment is None or not segment.times:
            return
        size = segment.finish()
        self.store.add_recording(
            RecordingEntry(
                self.camera,
                "segment",
                segment.start,
                segment.times[-1],
                self._relative(segment.final_path),
                size,
            )
        )
        self._keep_quota()

    # -- heat-map snapshots --------------------------------------------------------------------

    def _save_snapshot(self, heat: np.ndarray, when: float) -> None:
        self._last_snapshot = when
        path = self._path_for(when, ".heat.npz")
        _replace_bytes(path, _heat_npz(heat))
        self.store.add_recording(
            RecordingEntry(
                self.camera, "snapshot", when, when, self._relative(path), path.stat().st_size
            )
        )

    # -- live preview --------------------------------------------------------------------------

    def _preview_due(self, when: float) -> bool:
        every = self.options.preview_every_s
        if every <= 0:
            return False
        elapsed = when - self._last_preview
        return elapsed >= every or elapsed < 0  # a clock stepped back must not freeze it

    def _write_preview(self, image: np.ndarray, when: float, heat: np.ndarray | None) -> None:
        """Overwrite the live preview; failures are logged once and never stop recording."""
        self._last_preview = when
        try:
            ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, LIVE_JPEG_QUALITY])
            if not ok:
                raise OSError("cannot encode the live preview as JPEG")
            _replace_bytes(self.folder / LIVE_IMAGE, jpeg.tobytes())
            if heat is not None:
                _replace_bytes(self.folder / LIVE_HEAT, _heat_npz(heat))
            else:  # a heat map of another moment must not be shown over this frame
                (self.folder / LIVE_HEAT).unlink(missing_ok=True)
            info = {"time": when, "width": image.shape[1], "height": image.shape[0]}
            # Written last: a reader never sees a time newer than the image beside it.
            _replace_bytes(self.folder / LIVE_INFO, json.dumps(info).encode("utf-8"))
        except (OSError, ValueError, cv2.error) as error:
            # Once: a read-only or full disk would otherwise log every second.
            level = logging.DEBUG if self._preview_failed else logging.WARNING
            log.log(level, "%s: cannot write the live preview: %s", self.camera, error)
            self._preview_failed = True

    # -- space ---------------------------------------------------------------------------------

    def _check_space(self) -> None:
        free = shutil.disk_usage(self.folder).free
        if free < self.options.min_free_bytes:
            self._stop_recording(
                f"disk almost full ({free // 1024**2} MiB free at {self.folder}): recording stopped"
            )
            return
        self._keep_quota()

    def _keep_quota(self) -> None:
        quota = self.options.quota_bytes
        if quota is None:
            return
        used = self.store.recorded_bytes(self.camera)
        if used <= quota:
            return
        if self.options.on_full == "stop":
            self._stop_recording(
                f"recording quota full ({used} of {quota} bytes): recording stopped"
            )
            return
        self.error = f"recording quota reached ({quota} bytes): deleting the oldest recordings"
        for entry in self.store.recordings(self.camera):
            if used <= quota:
                break
            self._delete(entry)
            used -= entry.bytes
        log.info("%s: %s", self.camera, self.error)

    def _delete(self, entry: RecordingEntry) -> None:
        """Delete an entry's files (only ever inside this camera's folder) and its index row."""
        try:
            path = confined(self.folder, self._within_camera(entry.path))
        except UnsafePathError as error:
            # Not a recording of this camera (a row written by someone else): its file is left
            # alone, its row dropped so that it does not count against the quota again.
            log.error("%s: recording index entry refused, file not deleted: %s", self.camera, error)
        else:
            files = (path, times_path_of(path), density_path_of(path))
            for file in files if entry.kind == "segment" else (path,):
                file.unlink(missing_ok=True)
        self.store.remove_recording(entry.path)

    def _within_camera(self, stored_path: str) -> str:
        """An index path (``<camera>/...``, relative to the root) relative to the camera's
        folder; a path of another camera's folder is refused by :func:`confined`."""
        prefix = f"{self.camera}/"
        return stored_path[len(prefix) :] if stored_path.startswith(prefix) else "/" + stored_path

    def _stop_recording(self, reason: str) -> None:
        self.enabled = False
        self.error = reason
        log.error("%s: %s", self.camera, reason)
        segment, self._segment = self._segment, None
        if segment is not None:
            segment.writer.release()
            segment.partial_path.unlink(missing_ok=True)

    # -- paths ---------------------------------------------------------------------------------

    def _path_for(self, when: float, suffix: str) -> Path:
        stamp = datetime.fromtimestamp(when, timezone.utc)
        folder = self.folder / stamp.strftime("%Y-%m-%d")
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{stamp.strftime('%H%M%S')}-{int(when * 1000) % 1000:03d}{suffix}"

    def _relative(self, path: Path) -> str:
        return path.relative_to(self.options.root).as_posix()

    def resolve(self, stored_path: str) -> Path:
        """The file of an index entry, inside the recording root.

        Raises:
            UnsafePathError: the path is absolute or leads out of the root.
        """
        return confined(self.options.root, stored_path)

    def _clean_partial_files(self) -> None:
        """Segments left open by a crash cannot be decoded (no index at their end): drop them."""
        for partial in self.folder.rglob(f"*{PARTIAL_SUFFIX}"):
            log.warning("%s: removing a segment a crash left unfinished: %s", self.camera, partial)
            partial.unlink(missing_ok=True)


def shrink_heat(heat: np.ndarray, max_width: int) -> np.ndarray:
    """The heat map at most ``max_width`` wide, keeping its total (people are not lost).

    Example:
        >>> round(float(shrink_heat(np.full((100, 400), 0.01, np.float32), 200).sum()), 3)
        400.0
    """
    height, width = heat.shape[:2]
    if width <= max_width:
        return heat.astype(np.float32)
    new_size = (max_width, max(1, round(height * max_width / width)))
    small = cv2.resize(heat.astype(np.float32), new_size, interpolation=cv2.INTER_AREA)
    return small * ((width * height) / (new_size[0] * new_size[1]))


def _heat_npz(heat: np.ndarray) -> bytes:
    """A heat map as snapshots store it: shrunk, float16, with the full frame's shape."""
    small = shrink_heat(heat, SNAPSHOT_MAX_WIDTH).astype(np.float16)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, heat=small, shape=np.array(heat.shape))
    return buffer.getvalue()


def _replace_bytes(path: Path, data: bytes) -> None:
    """Write a file atomically: readers see the old or the new content, never half of it."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _fit_width(image: np.ndarray, max_width: int) -> np.ndarray:
    height, width = image.shape[:2]
    if width <= max_width:
        return image
    size = (max_width, round(height * max_width / width) // 2 * 2)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
