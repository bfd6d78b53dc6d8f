"""A camera's health as one analysis run sees it, reported to the store now and then.

``analyze --store`` and the live engine's workers report through the same
:class:`HealthReporter`; only where the state comes from differs (the run's own progress, or a
live stream's capture).
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from dataclasses import dataclass

from crowdwatch.store.records import CameraHealth
from crowdwatch.store.sql import SqlStore

log = logging.getLogger(__name__)


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


@dataclass(frozen=True, kw_only=True)
class CaptureCounts:
    """What the capture side knows: frames skipped to stay live, stream reconnections."""

    skipped: int = 0
    reconnects: int = 0


class HealthReporter:
    """Counts one camera's analysed frames and writes its :class:`CameraHealth`.

    :meth:`report` writes at most every ``every_s`` seconds unless the state changed (or
    ``force``); a store that cannot be written is logged, never raised: health is advisory,
    the analysis goes on.
    """

    def __init__(
        self,
        store: SqlStore | None,
        camera: str,
        *,
        target_fps: float | None,
        every_s: float = 1.0,
    ) -> None:
        self.store = store
        self.camera = camera
        self.target_fps = target_fps
        self.every_s = every_s
        self.analysed = 0
        self.last_frame_time: float | None = None
        self._rate = RateMeter()
        self._last_written = -math.inf
        self._last_state = ""

    def frame_analysed(self, wall_time: float) -> None:
        """Count one analysed frame captured at ``wall_time`` (epoch seconds)."""
        self.analysed += 1
        self.last_frame_time = wall_time
        self._rate.tick(time.monotonic())

    def health(
        self, state: str, *, error: str | None = None, counts: CaptureCounts | None = None
    ) -> CameraHealth:
        """The camera's health now, in ``state``."""
        counts = counts or CaptureCounts()
        return CameraHealth(
            camera=self.camera,
            state=state,
            analysis_fps=round(self._rate.rate(time.monotonic()), 3),
            target_fps=self.target_fps,
            analysed_frames=self.analysed,
            skipped_frames=counts.skipped,
            last_frame_time=self.last_frame_time,
            reconnects=counts.reconnects,
            error=error,
            updated=time.time(),
        )

    def report(
        self,
        state: str,
        *,
        error: str | None = None,
        counts: CaptureCounts | None = None,
        force: bool = False,
    ) -> None:
        """Write the health in ``state`` if it changed or is due."""
        if self.store is None:
            return
        now = time.monotonic()
        if not (force or state != self._last_state or now - self._last_written >= self.every_s):
            return
        self._last_written, self._last_state = now, state
        try:
            self.store.set_health(self.health(state, error=error, counts=counts))
        except Exception as error:  # the store is unavailable: the next report tries again
            log.warning(
                "camera %s: cannot write health: %s",
                self.camera,
                str(error).splitlines()[0] if str(error) else type(error).__name__,
            )
