"""One camera of the live engine: capture, analysis at its rate, store, recording, health.

The worker reuses :class:`~crowdwatch.pipeline.camera.CameraAnalyzer` for the analysis itself.
It analyses the newest frame at each tick of its analysis rate, so it never falls behind live;
when one analysis takes longer than a tick, the ticks it missed are counted as skipped.
Frames carry their capture time as epoch seconds, so everything it stores is in wall time.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from crowdwatch.alerts import AlertEvent, AlertSink
from crowdwatch.config.schema import CameraConfig, HeatmapConfig
from crowdwatch.engine.capture import CaptureOptions, FrameGrabber, Grab
from crowdwatch.estimators.base import Estimator
from crowdwatch.pipeline.camera import CameraAnalyzer, FrameResult
from crowdwatch.recording.recorder import CameraRecorder, RecordingOptions
from crowdwatch.store.feed import RateMeter, metric_records
from crowdwatch.store.records import CameraHealth
from crowdwatch.store.sinks import StoreAlertSink, StoreMetricsWriter, WallClock
from crowdwatch.store.sql import SqlStore
from crowdwatch.types import Estimate, Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerOptions:
    """How a camera worker runs.

    Attributes:
        default_fps: analysis rate of cameras without ``analysis_fps`` (None: as fast as it can).
        stall_s: a live stream with no new frame for this long is reported ``stalled``.
        health_every_s: how often health is written to the store.
        capture: how streams are opened and reconnected.
        recording: what to record (None: nothing).
    """

    default_fps: float | None = 2.0
    stall_s: float = 5.0
    health_every_s: float = 1.0
    capture: CaptureOptions = field(default_factory=CaptureOptions)
    recording: RecordingOptions | None = None


class LockedEstimator:
    """Shares one estimator between camera threads (one model in memory; the model itself
    already uses every core, and some backends are not thread-safe)."""

    def __init__(self, estimator: Estimator) -> None:
        self.inner = estimator
        self.name = estimator.name
        self._lock = threading.Lock()

    def estimate(self, image: np.ndarray) -> Estimate:
        """The inner estimator's estimate, one call at a time."""
        with self._lock:
            return self.inner.estimate(image)


@dataclass
class WorkerStats:
    """Counters of one worker, for health and benchmarks."""

    analysed: int = 0
    skipped: int = 0
    metrics_latency_s: deque[float] = field(default_factory=lambda: deque(maxlen=2000))
    alert_latency_s: deque[float] = field(default_factory=lambda: deque(maxlen=2000))
    analysis_s: deque[float] = field(default_factory=lambda: deque(maxlen=200))


class CameraWorker:
    """Runs one camera on a thread until :meth:`stop`.

    Example:
        >>> worker = CameraWorker(camera, estimator, store).start()  # doctest: +SKIP
        >>> worker.health().state  # doctest: +SKIP
        'live'
        >>> worker.stop()  # doctest: +SKIP
    """

    def __init__(
        self,
        camera: CameraConfig,
        estimator: Estimator,
        store: SqlStore,
        heatmap: HeatmapConfig | None = None,
        options: WorkerOptions | None = None,
        sinks: list[AlertSink] | None = None,
    ) -> None:
        self.camera = camera
        self.estimator = estimator
        self.store = store
        self.heatmap_config = heatmap or HeatmapConfig()
        self.options = options or WorkerOptions()
        self.stats = WorkerStats()
        self.error: str | None = None
        self._sinks: list[AlertSink] = [
            StoreAlertSink(store, WallClock(), snapshot_folder=self._alert_folder()),
            *(sinks or []),
        ]
        self._metrics = StoreMetricsWriter(store, WallClock())
        self._analyzer = CameraAnalyzer(camera, estimator, self.heatmap_config)
        self._grabber = self._make_grabber(camera)
        self._recording_problem: str | None = None
        self._recorder = self._make_recorder()
        self._pending: CameraConfig | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"camera-{camera.name}", daemon=True)
        self._rate = RateMeter()
        self._last_seq = 0
        self._last_time = 0.0
        self._last_health = -math.inf
        self._reported_state = ""

    @property
    def name(self) -> str:
        """The camera's name."""
        return self.camera.name

    @property
    def target_fps(self) -> float | None:
        """The analysis rate this camera aims for."""
        return self.camera.analysis_fps or self.options.default_fps

    def start(self) -> CameraWorker:
        """Start capture and analysis; returns self."""
        self._recover_after_unclean_stop()
        self._grabber.start()
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop, close the camera's open alerts and recording, and report it ``stopped``."""
        self._stop.set()
        self._thread.join(timeout_s)
        self._grabber.stop()

    def is_alive(self) -> bool:
        """True while the worker's thread runs."""
        return self._thread.is_alive()

    def apply(self, camera: CameraConfig) -> None:
        """Take a changed camera config (zones, lines, thresholds, rate, source) within a tick."""
        self._pending = camera

    def state(self) -> str:
        """``starting``, ``live``, ``reconnecting``, ``stalled``, ``failed`` or ``stopped``."""
        if self._stop.is_set() and not self._thread.is_alive():
            return "stopped"
        if self.error is not None:
            return "failed"
        grabbed = self._grabber.state
        silent_s = time.monotonic() - self._grabber.last_frame_at
        if grabbed == "live" and silent_s > self.options.stall_s:
            return "stalled"
        return grabbed

    def health(self) -> CameraHealth:
        """The camera's health now."""
        problems = [p for p in (self.error, self._grabber.error, self._recording_error()) if p]
        return CameraHealth(
            camera=self.name,
            state=self.state(),
            analysis_fps=round(self._rate.rate(time.monotonic()), 3),
            target_fps=self.target_fps,
            analysed_frames=self.stats.analysed,
            skipped_frames=self.stats.skipped,
            last_frame_time=self._last_time or None,
            reconnects=self._grabber.reconnects,
            error="; ".join(problems) or None,
            updated=time.time(),
        )

    # -- the analysis thread -----------------------------------------------------------------

    def _run(self) -> None:
        next_due = time.monotonic()
        try:
            while not self._stop.is_set():
                self._take_pending_config()
                self._stop.wait(max(0.0, next_due - time.monotonic()))
                grab = self._grabber.newest_after(self._last_seq, timeout_s=0.25)
                if grab is None:
                    self._report_health()
                    next_due = time.monotonic()
                    continue
                # Waiting for a frame of a slow stream is not lag of ours: count at most a tick.
                due = max(next_due, time.monotonic() - 1.0 / (self.target_fps or 1e9))
                self._analyse(grab)
                next_due = self._schedule(due)
                self._report_health()
        except Exception as error:  # one camera's failure must not stop the others
            log.exception("camera %s failed", self.name)
            self.error = f"{type(error).__name__}: {error}"
        finally:
            self._close()

    def _schedule(self, due: float) -> float:
        """When to analyse next, on a fixed grid of the analysis rate from ``due``.

        A late analysis is followed at once by the next one while the lag is under one tick;
        beyond that, the ticks it overran are skipped (and counted): the camera stays on the
        live edge instead of queueing up work.
        """
        now = time.monotonic()
        fps = self.target_fps
        if not fps:
            return now
        period = 1.0 / fps
        next_due = due + period
        if now - next_due >= period:
            overrun = math.floor((now - next_due) / period)
            self.stats.skipped += overrun
            next_due += overrun * period
        return next_due

    def _analyse(self, grab: Grab) -> None:
        if not self.target_fps:
            self.stats.skipped += max(0, grab.sequence - self._last_seq - 1)
        self._last_seq = grab.sequence
        # Alert engines need times in order; a wall clock may step back (NTP).
        when = max(grab.captured, self._last_time + 1e-6)
        frame = Frame(grab.image, grab.sequence, when, self.name)
        started = time.perf_counter()
        result = self._analyzer.process(frame)
        self._metrics.write(metric_records(result))
        self.stats.metrics_latency_s.append(time.time() - grab.captured)
        self._emit(result.events, result)
        if result.events:
            opened = [e for e in result.events if e.kind == "opened"]
            self.stats.alert_latency_s.extend(time.time() - grab.captured for _ in opened)
        if self._recorder is not None:
            self._recorder.add(frame.image, when, result.heat, result.estimate)
        self.stats.analysis_s.append(time.perf_counter() - started)
        self.stats.analysed += 1
        self._rate.tick(time.monotonic())
        self._last_time = when

    def _emit(self, events: list[AlertEvent], result: FrameResult | None) -> None:
        for event in events:
            if event.kind == "opened" and result is not None and self._alert_folder():
                self._save_alert_snapshot(event, result)
            for sink in self._sinks:
                try:
                    sink.emit(event)
                except Exception:
                    log.exception("camera %s: alert sink %r failed", self.name, sink)

    def _save_alert_snapshot(self, event: AlertEvent, result: FrameResult) -> None:
        folder = self._alert_folder()
        assert folder is not None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            recording = self.options.recording
            if recording is not None and recording.privacy_blur:
                # The snapshot is a recording too: people in it are blurred as well.
                result = result.with_people_blurred()
            image = self._analyzer.annotate(result)
            path = folder / f"{event.record.id}.jpg"
            if cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 85]):
                relative = path.relative_to(folder).as_posix()
                self._analyzer.engine.attach_snapshot(event.record.id, relative)
                event.record.snapshot = relative
        except (OSError, cv2.error) as error:
            log.warning("camera %s: cannot save alert snapshot: %s", self.name, error)

    def _report_health(self, force: bool = False) -> None:
        now = time.monotonic()
        health = self.health()
        changed = health.state != self._reported_state
        if force or changed or now - self._last_health >= self.options.health_every_s:
            self._last_health = now
            self._reported_state = health.state
            try:
                self.store.set_health(health)
            except Exception:
                log.exception("camera %s: cannot write health", self.name)

    def _take_pending_config(self) -> None:
        camera, self._pending = self._pending, None
        if camera is None or camera == self.camera:
            return
        # Open alerts are closed under the old rules and re-evaluated under the new ones.
        self._emit(self._analyzer.finish(max(time.time(), self._last_time + 1e-6)), None)
        analyzer = CameraAnalyzer(camera, self.estimator, self.heatmap_config)
        analyzer.heatmap = self._analyzer.heatmap
        self._analyzer = analyzer
        if (camera.source, camera.source_fps) != (self.camera.source, self.camera.source_fps):
            self._grabber.stop()
            self._grabber = self._make_grabber(camera).start()
            self._last_seq = 0
        log.info("camera %s: configuration applied", self.name)
        self.camera = camera

    def _make_grabber(self, camera: CameraConfig) -> FrameGrabber:
        capture = replace(self.options.capture, file_fps=camera.source_fps)
        return FrameGrabber(camera.source, capture)

    def _close(self) -> None:
        try:
            self._emit(self._analyzer.finish(max(time.time(), self._last_time)), None)
        except Exception:
            log.exception("camera %s: closing alerts failed", self.name)
        if self._recorder is not None:
            self._recorder.close()
        self._stop.set()
        self._grabber.stop()
        self._reported_state = ""
        state = "failed" if self.error else "stopped"
        try:
            health = self.health()
            self.store.set_health(
                CameraHealth(**{**health.__dict__, "state": state, "updated": time.time()})
            )
        except Exception:
            log.exception("camera %s: cannot write final health", self.name)

    def _recover_after_unclean_stop(self) -> None:
        """After a crash or a kill the store still shows the camera running, with alerts open:
        record the outage as a gap and close those alerts, so nothing needs repair by hand."""
        try:
            previous = self.store.health(self.name)
            if previous and previous[0].state not in ("stopped", "failed"):
                last = previous[0]
                self.store.set_health(
                    CameraHealth(
                        **{
                            **last.__dict__,
                            "state": "failed",
                            "error": "the engine stopped without closing this camera",
                            "updated": last.updated,
                        }
                    )
                )
            closed = self.store.close_orphaned_alerts(self.name, time.time(), "engine_restart")
            if closed:
                log.warning("camera %s: closed %d alert(s) left open by a crash", self.name, closed)
        except Exception:
            log.exception("camera %s: recovering the store after an unclean stop failed", self.name)

    def _make_recorder(self) -> CameraRecorder | None:
        options = self.options.recording
        if options is None:
            return None
        try:
            return CameraRecorder(self.name, options, self.store)
        except OSError as error:
            self._recording_problem = f"recording disabled: {error}"
            log.error("camera %s: %s", self.name, self._recording_problem)
            return None

    def _recording_error(self) -> str | None:
        return self._recorder.error if self._recorder is not None else self._recording_problem

    def _alert_folder(self) -> Path | None:
        recording = self.options.recording
        return None if recording is None else Path(recording.root) / self.camera.name / "alerts"
