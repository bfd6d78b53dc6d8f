"""One camera's analysis: frame -> estimate -> heat map -> zone and line metrics -> alert events.

``CameraAnalyzer`` holds the state that lives across frames (scene geometry, live heat map, crowd
motion, alert engine), so the same object serves a recorded file and a live stream. What a run
keeps of each :class:`~crowdwatch.types.FrameResult` is :mod:`crowdwatch.pipeline.outputs`'s job.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from crowdwatch.alerts import AlertEngine, AlertEvent, zone_rules
from crowdwatch.annotate import (
    DISPLAY_M2_SCALE,
    draw_density_m2,
    draw_header,
    draw_heatmap,
    draw_lines,
    draw_points,
    draw_zones,
)
from crowdwatch.config.scaling import camera_for_frames, pixel_aspect
from crowdwatch.config.schema import CameraConfig, EstimatorConfig, HeatmapConfig
from crowdwatch.errors import EstimatorError
from crowdwatch.estimators import resolve_kind
from crowdwatch.estimators.base import Estimator
from crowdwatch.heatmap import LiveHeatmap
from crowdwatch.metrics import measure_zone
from crowdwatch.pipeline.dynamics import CrowdDynamics
from crowdwatch.pipeline.scene import Scene, build_scene
from crowdwatch.types import Anchor, Estimate, Frame, FrameResult, LineMetrics, ZoneMetrics

__all__ = ["CameraAnalyzer", "FrameResult", "look_ahead_plan"]


class CameraAnalyzer:
    """Analyses one camera's frames in order.

    The scene (zones, lines, calibration raised to where the estimator puts people) is built
    from the first frame's size and its estimate's :class:`~crowdwatch.types.Anchor`; a later
    estimate with another anchor is an error, never a silent switch. The camera's pixel
    coordinates, drawn on frames of its ``frame_size`` (the main stream), are scaled to that
    first frame's size there (a substream's, a smaller recording's), and ``camera`` is the
    camera in the analysed frames' pixels from then on. ``run_id`` is part of every alert id, so
    two runs over one recording never share an alert.

    Example:
        >>> analyzer = CameraAnalyzer(camera_config, make_estimator())  # doctest: +SKIP
        >>> result = analyzer.process(frame)  # doctest: +SKIP
        >>> [(z.zone, z.count, z.density, z.level) for z in result.zones]  # doctest: +SKIP
    """

    def __init__(
        self,
        camera: CameraConfig,
        estimator: Estimator,
        heatmap: HeatmapConfig | None = None,
        *,
        run_id: str = "",
    ) -> None:
        self.camera = camera
        self.run_id = run_id
        self.estimator = estimator
        self.heatmap_config = heatmap or HeatmapConfig()
        self.heatmap = LiveHeatmap(self.heatmap_config.half_life_s)
        self.scene: Scene | None = None
        self.dynamics: CrowdDynamics | None = None
        self.engine: AlertEngine | None = None

    @property
    def zones(self):
        """The camera's zones (known after the first frame, which gives the frame size)."""
        return self.scene.zones if self.scene is not None else []

    def process(self, frame: Frame) -> FrameResult:
        """Analyse one frame: people, heat map, zone and line metrics, alerts."""
        estimate, estimator_ms = self._estimate(frame)
        return self._analyse(frame, estimate, estimator_ms)

    def process_stream(self, frames: Iterable[Frame], *, ahead: int = 1) -> Iterator[FrameResult]:
        """:meth:`process` for each of ``frames`` in order, the next ``ahead`` frames read and
        estimated while this one's metrics, alerts and drawing are done (a recorded file's
        frames are all there ahead of time; a live stream's newest frame is not, so the engine
        calls :meth:`process`). The results are exactly :meth:`process`'s: only the estimator's
        work, which needs nothing of the frames before, moves to the look-ahead threads; an
        error reading or estimating a frame is raised after every earlier frame's result.

        ``ahead`` > 1 estimates that many frames at once, which only pays with an estimator
        that runs calls side by side (``concurrent_calls``, one core each: see
        :func:`look_ahead_plan`); for any other estimator it is taken as 1.
        """
        if not getattr(self.estimator, "concurrent_calls", False):
            ahead = 1
        ahead = max(1, int(ahead))
        reader = _FramesInTurn(iter(frames))
        with ThreadPoolExecutor(max_workers=ahead, thread_name_prefix="look-ahead") as pool:
            pending = deque(
                pool.submit(self._read_and_estimate, reader, reader.turn()) for _ in range(ahead)
            )
            while (item := pending.popleft().result()) is not None:
                pending.append(pool.submit(self._read_and_estimate, reader, reader.turn()))
                yield self._analyse(*item)

    def _read_and_estimate(
        self, reader: _FramesInTurn, turn: tuple[threading.Event, threading.Event]
    ) -> tuple[Frame, Estimate, float] | None:
        frame = reader.next_frame(*turn)
        return None if frame is None else (frame, *self._estimate(frame))

    def _estimate(self, frame: Frame) -> tuple[Estimate, float]:
        """The estimator's people on ``frame`` and the milliseconds it took."""
        started = time.perf_counter()
        estimate = self.estimator.estimate(frame.image)
        return estimate, (time.perf_counter() - started) * 1000

    def _analyse(self, frame: Frame, estimate: Estimate, estimator_ms: float) -> FrameResult:
        """Everything after the estimate: heat map, zone and line metrics, alerts."""
        scene = self._scene_for(frame, estimate.anchor)
        heat = self.heatmap.update(estimate.density, frame.time_s)
        zones = [self._measure(zone, frame, estimate) for zone in scene.zones]
        # Once per frame: pressure, the bird's-eye view and the venue read it; the per-pixel
        # people/m² is only made when a frame is drawn (annotate).
        ground_m2 = scene.mapper.ground_grid(estimate.density) if scene.mapper else None
        zones, lines = self.dynamics.update(frame, estimate, zones, ground_m2)
        events: list[AlertEvent] = []
        zones = [self._alerts(record, frame.time_s, events) for record in zones]
        lines = [self._alerts(record, frame.time_s, events) for record in lines]
        return FrameResult(
            frame=frame,
            estimate=estimate,
            heat=heat,
            zones=tuple(zones),
            lines=tuple(lines),
            events=tuple(events),
            estimator_ms=estimator_ms,
            ground_m2=ground_m2,
            cell_m=scene.mapper.grid.cell_m if scene.mapper is not None else None,
        )

    def finish(self, time_s: float) -> list[AlertEvent]:
        """Close every open alert at the end of the stream."""
        return self.engine.finish(time_s) if self.engine is not None else []

    def annotate(self, result: FrameResult) -> np.ndarray:
        """The frame with its heat map (banded people/m² when calibrated), zones in their alert
        colours, counting lines with their crossings, people and a status line."""
        mapper = self.scene.mapper if self.scene is not None else None
        if result.ground_m2 is not None and mapper is not None:
            height, width = result.frame.image.shape[:2]
            shape = (max(1, round(height * DISPLAY_M2_SCALE)),
                     max(1, round(width * DISPLAY_M2_SCALE)))  # fmt: skip
            image = draw_density_m2(result.frame.image, mapper.grid_at(result.ground_m2, shape))
        else:
            image = draw_heatmap(result.frame.image, result.heat, self.heatmap_config.opacity)
        draw_zones(image, self.zones, result.zones)
        draw_lines(image, self.camera.lines, result.lines)
        draw_points(image, result.estimate.points)
        draw_header(
            image,
            f"{self.camera.name}  t={result.frame.time_s:7.1f}s  frame {result.frame.index}  "
            f"people {result.estimate.count:.1f}",
        )
        return image

    def _measure(self, zone, frame: Frame, estimate: Estimate) -> ZoneMetrics:
        return measure_zone(
            camera=self.camera.name,
            zone=zone.name,
            frame_index=frame.index,
            time_s=frame.time_s,
            count=zone.count(estimate),
            area_m2=zone.area_m2,
            capacity=zone.capacity,
        )

    def _alerts(
        self, record: ZoneMetrics | LineMetrics, time_s: float, events: list[AlertEvent]
    ) -> ZoneMetrics | LineMetrics:
        events += self.engine.update(record.target, time_s, record.alert_inputs())
        return record.with_level(self.engine.level(record.target))

    def _scene_for(self, frame: Frame, anchor: Anchor) -> Scene:
        if self.scene is None:
            self._start(*frame.size, anchor)
        elif anchor is not self.scene.anchor:
            raise EstimatorError(
                f"camera {self.camera.name}: the estimator placed people at their {anchor.value} "
                f"after placing them at their {self.scene.anchor.value}"
            )
        return self.scene

    def _start(self, width: int, height: int, anchor: Anchor) -> None:
        aspect = pixel_aspect(self.camera, width=width, height=height)
        self.camera = camera_for_frames(self.camera, width=width, height=height)
        self.scene = build_scene(
            self.camera, width=width, height=height, anchor=anchor, pixel_aspect=aspect
        )
        self.dynamics = CrowdDynamics(self.scene, self.camera)
        configs = {zone.name: zone for zone in self.camera.zones}
        rules = {}
        for zone in self.scene.zones:
            config = configs.get(zone.name)
            configured = config.alerts if config is not None else []
            rules[f"{self.camera.name}/{zone.name}"] = zone_rules(
                configured, area_known=bool(zone.area_m2)
            )
        rules.update({f"{self.camera.name}/{line.name}": list(line.alerts)
                      for line in self.camera.lines})  # fmt: skip
        self.engine = AlertEngine(rules, run=self.run_id)


class _FramesInTurn:
    """Hands the frames of one iterator to look-ahead tasks in the order the tasks were made.

    Each task gets a turn (:meth:`turn`, called in submission order): it reads only after the
    task before it has read, so the n-th submitted task estimates the n-th frame and the
    results can be taken from the futures in order. A read that raises still passes the turn on.
    """

    def __init__(self, frames: Iterator[Frame]) -> None:
        self._frames = frames
        self._previous = threading.Event()
        self._previous.set()

    def turn(self) -> tuple[threading.Event, threading.Event]:
        """(the event to wait for, the event to set once read) for the next task."""
        wait_for, done = self._previous, threading.Event()
        self._previous = done
        return wait_for, done

    def next_frame(self, wait_for: threading.Event, done: threading.Event) -> Frame | None:
        wait_for.wait()
        try:
            return next(self._frames, None)
        finally:
            done.set()


def look_ahead_plan(config: EstimatorConfig, cores: int | None = None) -> tuple[int, int]:
    """(model threads per call, frames estimated at once) for one camera's recorded frames on
    ``cores`` cores (default: the cores this process may use), as ``analyze`` runs them.

    The density model on the CPU (with or without the sparse gate) estimates one frame per
    core on single-threaded sessions: one call on two threads leaves the cores idle where its
    threads wait on each other inside each layer, and a frame's measuring and drawing fill
    those gaps (``benchmarks/pipeline_speed.py``). Anything else runs one call at a time on
    every core, one frame ahead.
    """
    cores = max(1, cores or len(os.sched_getaffinity(0)))
    if resolve_kind(config) == "density" and config.device == "cpu":
        return 1, cores
    return cores, 1
