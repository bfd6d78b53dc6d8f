"""One camera of the live engine: capture, analysis at its rate, and health.

The analysis is :class:`~crowdwatch.pipeline.camera.CameraAnalyzer` and what it keeps is
:func:`~crowdwatch.pipeline.outputs.build_run_outputs`: exactly the code ``crowdwatch analyze``
runs, so the live numbers are the validated ones.
It analyses the newest frame at each tick of its analysis rate, so it never falls behind live;
when one analysis takes longer than a tick, the ticks it missed are counted as skipped.
Frames carry their capture time as epoch seconds, so everything it stores is in wall time.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from crowdwatch.config.scaling import analysed_source
from crowdwatch.config.schema import CameraConfig, EventConfig
from crowdwatch.engine.batching import BatchingEstimator
from crowdwatch.engine.capture import CaptureOptions, FrameGrabber, Grab
from crowdwatch.estimators import EstimatorConfig, make_estimator
from crowdwatch.estimators.base import Estimator
from crowdwatch.pipeline.camera import CameraAnalyzer
from crowdwatch.pipeline.health import CaptureCounts, HealthReporter
from crowdwatch.pipeline.outputs import build_run_outputs
from crowdwatch.pipeline.provenance import config_sha256
from crowdwatch.pipeline.scene import Scene
from crowdwatch.recording.recorder import RecordingOptions
from crowdwatch.store.records import CameraHealth
from crowdwatch.store.sinks import WallClock
from crowdwatch.store.sql import SqlStore
from crowdwatch.types import Estimate, Frame, FrameResult

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


class SharedEstimator:
    """Shares one estimator (one model in memory) between camera threads, at most ``slots``
    estimates at a time. An estimator that declares ``concurrent_calls`` (an onnxruntime
    session runs calls from several threads at once) gets ``slots`` of them; any other one
    (a torch or OpenCV DNN model) one at a time. Its estimates carry the inner estimator's
    anchor, as every estimate does.

    Several cameras' frames on single-threaded sessions side by side beat one frame at a time
    on every core: at 640x360 the density model does 20.9 - 26.0 frames/s on 2 cores that way
    against 16.8 - 17.5 (``benchmarks/model_calls.py``; ``benchmarks/cameras_capacity.py``
    measures the engine).
    """

    def __init__(self, estimator: Estimator, *, slots: int = 1) -> None:
        self.inner = estimator
        self.name = estimator.name
        self.anchor = estimator.anchor
        self.model_file = estimator.model_file
        self.slots = max(1, int(slots)) if getattr(estimator, "concurrent_calls", False) else 1
        self._slots = threading.BoundedSemaphore(self.slots)

    def estimate(self, image: np.ndarray) -> Estimate:
        """The inner estimator's estimate, at most ``slots`` calls at a time."""
        with self._slots:
            return self.inner.estimate(image)


def share_estimator(
    config: EstimatorConfig, *, cameras: int, estimator: Estimator | None = None
) -> Estimator:
    """The one model every camera of a process calls: ``config``'s estimator (or ``estimator``)
    behind a :class:`~crowdwatch.engine.batching.BatchingEstimator` when ``config.max_batch``
    > 1 (the GPU path), else behind a :class:`SharedEstimator` with the CPU's threads and slots
    for ``cameras`` cameras (:func:`model_threads_and_slots`)."""
    threads, slots = model_threads_and_slots(cameras)
    model = estimator or make_estimator(config, threads=threads)
    if config.max_batch > 1 and hasattr(model, "estimate_batch"):
        return BatchingEstimator(
            model, max_batch=config.max_batch, wait_s=config.batch_wait_ms / 1000.0
        )
    return SharedEstimator(model, slots=slots)


def model_threads_and_slots(cameras: int, cores: int | None = None) -> tuple[int, int]:
    """(threads per model call, calls at a time) for ``cameras`` cameras sharing ``cores``:
    one camera gets every core for its one call; several get one core per call, a call per
    core."""
    cores = max(1, cores or len(os.sched_getaffinity(0)))
    return (cores, 1) if cameras <= 1 else (1, cores)


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

    What each analysed frame leaves behind (metrics, alerts to the store, the JSONL log and
    webhooks, snapshots, recording and live preview) is :class:`RunOutputs`' job, built by the
    same factory ``crowdwatch analyze`` uses; the worker only adds capture, pacing and health.

    Example:
        >>> worker = CameraWorker(event, camera, estimator, store).start()  # doctest: +SKIP
        >>> worker.health().state  # doctest: +SKIP
        'live'
        >>> worker.stop()  # doctest: +SKIP
    """

    def __init__(
        self,
        event: EventConfig,
        camera: CameraConfig,
        estimator: Estimator,
        store: SqlStore,
        options: WorkerOptions | None = None,
        *,
        on_result: Callable[[str, FrameResult, Scene], None] | None = None,
    ) -> None:
        self.event = event
        self.on_result = on_result  # the venue's step, fed with every analysed frame
        self.camera = camera
        self.estimator = estimator
        self.store = store
        self.options = options or WorkerOptions()
        self.stats = WorkerStats()
        self.error: str | None = None
        self._grabber = self._make_grabber(camera)
        # Each start of a camera is a run of its own in the store (metrics and alerts say which).
        self.run_id = store.start_run(
            camera.name,
            "engine",
            source=self._grabber.name,
            config_hash=config_sha256(event),
            model=str(estimator.model_file),
        )
        self._analyzer = CameraAnalyzer(camera, estimator, event.heatmap, run_id=self.run_id)
        self._outputs = build_run_outputs(
            event,
            camera,
            annotate=lambda result: self._analyzer.annotate(result),
            clock=WallClock(),  # frames carry their capture time in epoch seconds
            store=store,
            recording=self.options.recording,
            run_id=self.run_id,
        )
        self._health = HealthReporter(
            store, camera.name, target_fps=self.target_fps, every_s=self.options.health_every_s
        )
        self._pending: CameraConfig | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"camera-{camera.name}", daemon=True)
        self._last_seq = 0
        self._last_time = 0.0

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
        return self._health.health(self.state(), error=self._problems(), counts=self._counts())

    # -- the analysis thread -----------------------------------------------------------------

    def _run(self) -> None:
        next_due = time.monotonic() + self.tick_phase_s()
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

    def tick_phase_s(self) -> float:
        """Delay of this camera's first analysis tick: its place among the event's cameras as
        a share of the analysis period (camera k of N starts k/N of a period late).

        Cameras started together would otherwise all analyse in the same instant of every
        period: their frames, and the snapshots and commits of alerts they open together,
        queue up behind each other while the machine idles for the rest of the period. When
        the model batches (``estimator.max_batch`` > 1, the GPU path) the cameras of one batch
        tick together and the batches are staggered instead: camera k is in batch
        k // max_batch of ceil(N / max_batch).
        """
        fps = self.target_fps
        names = [camera.name for camera in self.event.cameras]
        if not fps or self.name not in names:
            return 0.0
        per_call = self.event.estimator.max_batch
        batches = -(-len(names) // per_call)
        return (names.index(self.name) // per_call) / batches / fps

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
        frame = Frame(grab.image, grab.index, when, self.name)
        started = time.perf_counter()
        result = self._analyzer.process(frame)
        events = self._outputs.keep(result)
        if self.on_result is not None:
            self.on_result(self.name, result, self._analyzer.scene)
        # Latencies end where the store has the rows, not after the recording that follows.
        self.stats.metrics_latency_s.append(self._outputs.metrics_written_at - grab.captured)
        opened = sum(event.kind == "opened" for event in events)
        self.stats.alert_latency_s.extend([self._outputs.alerts_sent_at - grab.captured] * opened)
        self.stats.analysis_s.append(time.perf_counter() - started)
        self.stats.analysed += 1
        self._health.frame_analysed(when)
        self._last_time = when

    def _report_health(self, force: bool = False) -> None:
        self._health.report(
            self.state(), error=self._problems(), counts=self._counts(), force=force
        )

    def _problems(self) -> str | None:
        problems = [
            self.error,
            self._grabber.error,
            self._outputs.recording_error,
            self._outputs.store_error,
        ]
        return "; ".join(problem for problem in problems if problem) or None

    def _counts(self) -> CaptureCounts:
        return CaptureCounts(skipped=self.stats.skipped, reconnects=self._grabber.reconnects)

    def _take_pending_config(self) -> None:
        camera, self._pending = self._pending, None
        if camera is None or camera == self.camera:
            return
        # Open alerts are closed under the old rules and re-evaluated under the new ones.
        self._outputs.emit(self._analyzer.finish(max(time.time(), self._last_time + 1e-6)))
        analyzer = CameraAnalyzer(camera, self.estimator, self.event.heatmap, run_id=self.run_id)
        analyzer.heatmap = self._analyzer.heatmap
        self._analyzer = analyzer
        if _capture_of(camera) != _capture_of(self.camera):
            self._grabber.stop()
            self._grabber = self._make_grabber(camera).start()
            self._last_seq = 0
        log.info("camera %s: configuration applied", self.name)
        self.camera = camera
        self._health.target_fps = self.target_fps

    def _make_grabber(self, camera: CameraConfig) -> FrameGrabber:
        capture = replace(self.options.capture, file_fps=camera.source_fps)
        return FrameGrabber(analysed_source(camera), capture)

    def _close(self) -> None:
        try:
            self._outputs.emit(self._analyzer.finish(max(time.time(), self._last_time)))
        except Exception:
            log.exception("camera %s: closing alerts failed", self.name)
        self._outputs.close()
        self._stop.set()
        self._grabber.stop()
        state = "failed" if self.error else "stopped"
        self._health.report(state, error=self._problems(), counts=self._counts(), force=True)
        try:
            self.store.end_run(self.run_id)
        except Exception:
            log.exception("camera %s: cannot record the end of its run", self.name)

    def _recover_after_unclean_stop(self) -> None:
        """After a crash or a kill the store still shows the camera running, with alerts open:
        record the outage as a gap and close those alerts, so nothing needs repair by hand."""
        try:
            previous = self.store.health(self.name)
            if previous and previous[0].state not in ("stopped", "failed"):
                last = previous[0]
                self.store.set_health(
                    replace(
                        last,
                        state="failed",
                        error="the engine stopped without closing this camera",
                    )
                )
            closed = self.store.close_orphaned_alerts(self.name, time.time(), "engine_restart")
            if closed:
                log.warning("camera %s: closed %d alert(s) left open by a crash", self.name, closed)
        except Exception:
            log.exception("camera %s: recovering the store after an unclean stop failed", self.name)


def _capture_of(camera: CameraConfig) -> tuple[str | int, float | None]:
    """What the camera's grabber depends on: the source it reads and its true frame rate."""
    return analysed_source(camera), camera.source_fps
