"""One analysis run's connection to the store: metrics, alerts, camera health, config version.

Used by ``crowdwatch analyze --store`` (a recording analysed as if live, video time 0 being the
run's start) and by the live engine's camera workers.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Any

from crowdwatch.store.open import open_store
from crowdwatch.store.records import CameraHealth
from crowdwatch.store.sinks import StoreAlertSink, StoreMetricsWriter, WallClock
from crowdwatch.store.sql import SqlStore

HEALTH_EVERY_S = 2.0


def metric_records(result: Any) -> list[Any]:
    """Every metrics record of an analysed frame: its ``zones`` and any other list of records
    with a camera and a time (counting lines, flow, ... as later stages add them).

    Example:
        >>> from types import SimpleNamespace as Record
        >>> zone = Record(camera="gate", zone="a", time_s=1.0)
        >>> line = Record(camera="gate", line="door", time_s=1.0)
        >>> len(metric_records(Record(zones=[zone], lines=[line], events=["x"])))
        2
    """
    records: list[Any] = list(result.zones)
    for name, value in vars(result).items():
        if name == "zones" or not isinstance(value, list):
            continue
        records += [r for r in value if hasattr(r, "camera") and hasattr(r, "time_s")]
    return records


class RateMeter:
    """Events per second over a sliding window of the last ``window`` events.

    Example:
        >>> meter = RateMeter()
        >>> for t in (0.0, 0.5, 1.0, 1.5): meter.tick(t)
        >>> meter.rate()
        2.0
    """

    def __init__(self, window: int = 20) -> None:
        self._times: deque[float] = deque(maxlen=window)

    def tick(self, now: float) -> None:
        """Count one event at time ``now`` (seconds, any clock)."""
        self._times.append(now)

    def rate(self, now: float | None = None) -> float:
        """Events per second; 0 with fewer than two events, or when given ``now``, if no
        event came for much longer than usual (the source stopped)."""
        if len(self._times) < 2 or self._times[-1] <= self._times[0]:
            return 0.0
        span = self._times[-1] - self._times[0]
        interval = span / (len(self._times) - 1)
        if now is not None and now - self._times[-1] > 3 * interval + 1.0:
            return 0.0
        return (len(self._times) - 1) / span


class StoreFeed:
    """Writes one camera's analysis results to a store.

    Args:
        store: the open store.
        camera: the camera's name.
        clock: maps the analysis' stream seconds to wall time.
        snapshot_folder: folder that alert snapshot paths are relative to.
        own_store: close the store on :meth:`close`.
    """

    def __init__(
        self,
        store: SqlStore,
        camera: str,
        clock: WallClock,
        snapshot_folder: Path | None = None,
        own_store: bool = False,
        target_fps: float | None = None,
    ) -> None:
        self.store = store
        self.camera = camera
        self.clock = clock
        self.own_store = own_store
        self.target_fps = target_fps
        self.alerts = StoreAlertSink(store, clock, snapshot_folder=snapshot_folder)
        self.metrics = StoreMetricsWriter(store, clock)
        self.frames = 0
        self.recorder: Any = None  # a CameraRecorder when the run is recorded
        self._rate = RateMeter()
        self._last_health = -float("inf")
        self._last_frame_time: float | None = None

    @classmethod
    def open(
        cls,
        target: str | Path,
        config: Any,
        camera: Any,
        out_dir: Path,
        recording: Any = None,
    ) -> StoreFeed:
        """Open the store, save the config as a version and mark the camera as starting;
        with ``recording`` (:class:`~crowdwatch.recording.RecordingOptions`), also record the
        analysed frames and heat maps."""
        store = open_store(target)
        store.save_config(config, author="crowdwatch analyze", note=f"analysis of {camera.name}")
        feed = cls(
            store,
            camera.name,
            WallClock.starting_now(),
            out_dir,
            own_store=True,
            target_fps=camera.analysis_fps,
        )
        if recording is not None:
            from crowdwatch.recording.recorder import CameraRecorder

            feed.recorder = CameraRecorder(camera.name, recording, store)
        feed.report("starting")
        return feed

    def write(self, result: Any) -> None:
        """Store one analysed frame's metrics (a ``FrameResult``); report health now and then."""
        self.metrics.write(metric_records(result))
        self.frames += 1
        self._last_frame_time = self.clock.wall(result.frame.time_s)
        if self.recorder is not None:
            frame = result.frame
            self.recorder.add(frame.image, self._last_frame_time, result.heat, result.estimate)
        now = time.monotonic()
        self._rate.tick(now)
        if now - self._last_health >= HEALTH_EVERY_S:
            self.report("live")

    def report(self, state: str, error: str | None = None, **counts: int) -> None:
        """Write the camera's health with this state."""
        self._last_health = time.monotonic()
        self.store.set_health(
            CameraHealth(
                camera=self.camera,
                state=state,
                analysis_fps=self._rate.rate(),
                target_fps=self.target_fps,
                analysed_frames=self.frames,
                skipped_frames=counts.get("skipped", 0),
                last_frame_time=self._last_frame_time,
                reconnects=counts.get("reconnects", 0),
                error=error,
                updated=time.time(),
            )
        )

    def close(self, summary: Any = None) -> None:
        """Mark the camera stopped (with the run's error, if any) and close an owned store."""
        try:
            if self.recorder is not None:
                self.recorder.close()
            error = getattr(summary, "error", None)
            self.report("stopped" if not error or error == "interrupted" else "failed", error)
        finally:
            if self.own_store:
                self.store.close()
