"""Replay: a camera's recording for a time range, with its heat maps, metrics and alerts.

The console uses :func:`replay_frames` (frames one by one) and :func:`recording_overview`
(what exists for a range, without decoding video). A segment that cannot be decoded is marked
``corrupt`` in the store's index and reported in :attr:`Replay.problems`; the other segments
still play.
"""

from __future__ import annotations

import bisect
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from crowdwatch.errors import UnsafePathError
from crowdwatch.paths import confined
from crowdwatch.recording.recorder import times_path_of
from crowdwatch.store.records import MetricSample, RecordingEntry, StoredAlert
from crowdwatch.store.sql import SqlStore

log = logging.getLogger(__name__)


@dataclass
class ReplayFrame:
    """One recorded frame with what was known at that moment.

    Attributes:
        time: wall time the frame was captured (epoch seconds).
        image: the recorded BGR frame.
        heat: the heat-map snapshot nearest before this frame (people per pixel of the
            snapshot's reduced size), or None.
        heat_time: when that snapshot was taken.
        metrics: the newest sample of each zone/line at or before ``time``.
        alerts: alerts open at ``time``.
    """

    camera: str
    time: float
    image: np.ndarray
    heat: np.ndarray | None = None
    heat_time: float | None = None
    metrics: list[MetricSample] = field(default_factory=list)
    alerts: list[StoredAlert] = field(default_factory=list)


@dataclass
class Overview:
    """What the store holds for a camera and time range (nothing decoded)."""

    camera: str
    start: float
    end: float
    segments: list[RecordingEntry]
    snapshots: list[RecordingEntry]
    metrics: list[MetricSample]
    alerts: list[StoredAlert]


class Replay:
    """Iterate a camera's recorded frames in ``[start, end]``.

    Example:
        >>> replay = Replay(store, Path("recordings"), "gate", t0, t0 + 600)  # doctest: +SKIP
        >>> for frame in replay:  # doctest: +SKIP
        ...     show(frame.image, frame.heat, frame.metrics, frame.alerts)
        >>> replay.problems  # doctest: +SKIP
        ['gate/2026-11-29/101500-000.mp4: cannot be decoded (corrupt)']
    """

    def __init__(self, store: SqlStore, root: Path, camera: str, start: float, end: float) -> None:
        if end < start:
            raise ValueError(f"replay range ends ({end}) before it starts ({start})")
        self.store = store
        self.root = Path(root)
        self.camera = camera
        self.start = start
        self.end = end
        self.problems: list[str] = []
        self.overview = recording_overview(store, camera, start, end)
        self._snapshot_times = [s.start for s in self.overview.snapshots]
        self._metric_times = [m.time for m in self.overview.metrics]
        self._heat_cache: tuple[str, np.ndarray] | None = None

    def __iter__(self) -> Iterator[ReplayFrame]:
        for segment in self.overview.segments:
            yield from self._segment_frames(segment)

    def _segment_frames(self, segment: RecordingEntry) -> Iterator[ReplayFrame]:
        try:
            path = confined(self.root, segment.path)
        except UnsafePathError as error:
            self.problems.append(f"{segment.path}: {error}")
            log.error("replay of %s: %s", self.camera, error)
            return
        times = self._times(segment, path)
        if times is None:
            return
        capture = cv2.VideoCapture(str(path))
        decoded = 0
        try:
            for when in times:
                ok, image = capture.read()
                if not ok or image is None:
                    break
                decoded += 1
                if self.start <= when <= self.end:
                    yield self._frame(when, image)
        finally:
            capture.release()
        if decoded < len(times):
            self._report(segment, f"only {decoded} of {len(times)} frames decode (corrupt)")

    def _times(self, segment: RecordingEntry, path: Path) -> list[float] | None:
        if not path.is_file():
            self._report(segment, "file is missing", status="missing")
            return None
        try:
            return [float(t) for t in json.loads(times_path_of(path).read_text("utf-8"))]
        except (OSError, ValueError) as error:
            self._report(segment, f"frame times unreadable ({error})")
            return None

    def _frame(self, when: float, image: np.ndarray) -> ReplayFrame:
        heat, heat_time = self._heat_at(when)
        return ReplayFrame(
            camera=self.camera,
            time=when,
            image=image,
            heat=heat,
            heat_time=heat_time,
            metrics=self._metrics_at(when),
            alerts=[a for a in self.overview.alerts if _open_at(a, when)],
        )

    def _heat_at(self, when: float) -> tuple[np.ndarray | None, float | None]:
        index = bisect.bisect_right(self._snapshot_times, when) - 1
        if index < 0:
            return None, None
        entry = self.overview.snapshots[index]
        if self._heat_cache is None or self._heat_cache[0] != entry.path:
            try:
                heat = load_heat(confined(self.root, entry.path))
            except UnsafePathError as error:
                log.error("replay of %s: %s", self.camera, error)
                heat = None
            if heat is None:
                return None, None
            self._heat_cache = (entry.path, heat)
        return self._heat_cache[1], entry.start

    def _metrics_at(self, when: float) -> list[MetricSample]:
        newest: dict[tuple[str, str], MetricSample] = {}
        stop = bisect.bisect_right(self._metric_times, when)
        for sample in self.overview.metrics[max(0, stop - 200) : stop]:
            newest[(sample.kind, sample.zone)] = sample
        return list(newest.values())

    def _report(self, segment: RecordingEntry, problem: str, status: str = "corrupt") -> None:
        message = f"{segment.path}: {problem}"
        self.problems.append(message)
        log.warning("replay of %s: %s", self.camera, message)
        self.store.set_recording_status(segment.path, status)


def replay_frames(
    store: SqlStore, root: Path, camera: str, start: float, end: float
) -> Iterator[ReplayFrame]:
    """The recorded frames of ``camera`` between ``start`` and ``end`` (see :class:`Replay`)."""
    return iter(Replay(store, root, camera, start, end))


def recording_overview(store: SqlStore, camera: str, start: float, end: float) -> Overview:
    """Segments, heat-map snapshots, metrics and alerts of a camera in a time range.

    Snapshots include the last one before ``start``, so the first frames have a heat map.
    """
    segments = store.recordings(camera, start, end, kind="segment")
    snapshots = store.recordings(camera, start - 3600, end, kind="snapshot")
    before = [s for s in snapshots if s.start < start]
    snapshots = before[-1:] + [s for s in snapshots if s.start >= start]
    return Overview(
        camera=camera,
        start=start,
        end=end,
        segments=segments,
        snapshots=snapshots,
        metrics=store.metrics(camera, start=start - 60, end=end),
        alerts=store.alerts(camera=camera, start=start, end=end),
    )


def load_heat(path: Path) -> np.ndarray | None:
    """A heat-map snapshot as float32, or None when the file is missing or unreadable."""
    loaded = load_heat_with_shape(path)
    return None if loaded is None else loaded[0]


def load_heat_with_shape(path: Path) -> tuple[np.ndarray, tuple[int, int] | None] | None:
    """A heat-map snapshot as float32 and the (height, width) of the frame it was reduced from
    (None when the file does not say), read in one go; None when unreadable."""
    try:
        with np.load(path) as data:
            heat = data["heat"].astype(np.float32)
            shape = data["shape"] if "shape" in data.files else None
    except (OSError, ValueError, KeyError) as error:
        log.warning("cannot read heat-map snapshot %s: %s", path, error)
        return None
    full_size = (int(shape[0]), int(shape[1])) if shape is not None and len(shape) >= 2 else None
    return heat, full_size


def _open_at(alert: StoredAlert, when: float) -> bool:
    return alert.opened <= when and (alert.closed is None or alert.closed >= when)
