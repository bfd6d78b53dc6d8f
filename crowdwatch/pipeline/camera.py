"""One camera's analysis: frame -> estimate -> heat map -> zone and line metrics -> alert events.

``CameraAnalyzer`` holds the state that lives across frames (scene geometry, live heat map, crowd
motion, alert engine), so the same object serves a recorded file and a live stream.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from crowdwatch.alerts import AlertEngine, AlertEvent, AlertRule, default_rules
from crowdwatch.annotate import (
    draw_density_m2,
    draw_header,
    draw_heatmap,
    draw_lines,
    draw_points,
    draw_zones,
)
from crowdwatch.config.schema import CameraConfig, HeatmapConfig, ZoneConfig
from crowdwatch.estimators.base import Estimator
from crowdwatch.heatmap import LiveHeatmap
from crowdwatch.metrics import LineMetrics, ZoneMetrics, measure_zone
from crowdwatch.pipeline.dynamics import CrowdDynamics
from crowdwatch.pipeline.scene import Scene, build_calibration, build_scene
from crowdwatch.recording.privacy import blur_people
from crowdwatch.types import Estimate, Frame

__all__ = ["CameraAnalyzer", "FrameResult", "build_calibration", "zone_rules"]


@dataclass
class FrameResult:
    """Everything one analysed frame produced.

    ``heat`` is the live heat map in people per pixel. Calibrated cameras only: ``ground_m2`` is
    the frame's people per m² on the ground grid (the bird's-eye view), ``density_m2`` the same
    read back at each pixel (NaN where the image shows no ground).
    """

    frame: Frame
    estimate: Estimate
    heat: np.ndarray
    zones: list[ZoneMetrics]
    events: list[AlertEvent] = field(default_factory=list)
    estimator_ms: float = 0.0
    lines: list[LineMetrics] = field(default_factory=list)
    density_m2: np.ndarray | None = None
    ground_m2: np.ndarray | None = None

    def with_people_blurred(self) -> FrameResult:
        """The same result whose frame has its people pixelated (for images that are kept)."""
        hidden = blur_people(self.frame.image, self.estimate)
        return replace(self, frame=replace(self.frame, image=hidden))


def zone_rules(zone: ZoneConfig | None, area_known: bool) -> list[AlertRule]:
    """A zone's own rules, or the literature density defaults when its area is known."""
    if zone is not None and zone.alerts:
        return list(zone.alerts)
    return default_rules(("density",)) if area_known else []


class CameraAnalyzer:
    """Analyses one camera's frames in order.

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
    ) -> None:
        self.camera = camera
        self.estimator = estimator
        self.heatmap_config = heatmap or HeatmapConfig()
        self.heatmap = LiveHeatmap(self.heatmap_config.half_life_s)
        # People positions are at the feet for detectors, at the head for the density model.
        self.anchor = getattr(estimator, "anchor", "feet")
        self.scene: Scene | None = None
        self.dynamics: CrowdDynamics | None = None
        self.engine: AlertEngine | None = None

    @property
    def zones(self):
        """The camera's zones (known after the first frame, which gives the frame size)."""
        return self.scene.zones if self.scene is not None else []

    def process(self, frame: Frame) -> FrameResult:
        """Analyse one frame: people, heat map, zone and line metrics, alerts."""
        if self.scene is None:
            self._start(*frame.size)
        started = time.perf_counter()
        estimate = self.estimator.estimate(frame.image)
        estimator_ms = (time.perf_counter() - started) * 1000
        heat = self.heatmap.update(estimate.density, frame.time_s)
        zones = [
            measure_zone(
                self.camera.name,
                zone.name,
                frame.index,
                frame.time_s,
                zone.count(estimate),
                zone.area_m2,
                zone.capacity,
            )  # fmt: skip
            for zone in self.scene.zones
        ]
        ground_m2 = density_m2 = None
        if self.scene.mapper is not None:  # once per frame: the display, pressure and bird's-eye
            ground_m2 = self.scene.mapper.ground_grid(estimate.density)
            density_m2 = self.scene.mapper.grid_to_image(ground_m2)
        zones, lines = self.dynamics.update(frame, estimate, zones, density_m2)
        events: list[AlertEvent] = []
        zones = [self._alerts(record, frame.time_s, events) for record in zones]
        lines = [self._alerts(record, frame.time_s, events) for record in lines]
        return FrameResult(
            frame, estimate, heat, zones, events, estimator_ms, lines, density_m2, ground_m2
        )

    def finish(self, time_s: float) -> list[AlertEvent]:
        """Close every open alert at the end of the stream."""
        return self.engine.finish(time_s) if self.engine is not None else []

    def annotate(self, result: FrameResult) -> np.ndarray:
        """The frame with its heat map (banded people/m² when calibrated), zones in their alert
        colours, counting lines with their crossings, people and a status line."""
        if result.density_m2 is not None:
            image = draw_density_m2(result.frame.image, result.density_m2)
        else:
            image = draw_heatmap(result.frame.image, result.heat, self.heatmap_config.opacity)
        draw_zones(image, self.scene.zones, result.zones)
        draw_lines(image, self.camera.lines, result.lines)
        draw_points(image, result.estimate.points)
        draw_header(
            image,
            f"{self.camera.name}  t={result.frame.time_s:7.1f}s  frame {result.frame.index}  "
            f"people {result.estimate.count:.1f}",
        )
        return image

    def _alerts(self, record, time_s: float, events: list[AlertEvent]):
        events += self.engine.update(record.target, time_s, record.alert_inputs())
        return record.with_level(self.engine.level(record.target).label)

    def _start(self, width: int, height: int) -> None:
        self.scene = build_scene(self.camera, width, height, self.anchor)
        self.dynamics = CrowdDynamics(self.scene, self.camera)
        configs = {zone.name: zone for zone in self.camera.zones}
        rules = {
            f"{self.camera.name}/{zone.name}": zone_rules(
                configs.get(zone.name), bool(zone.area_m2)
            )
            for zone in self.scene.zones
        }
        rules.update({f"{self.camera.name}/{line.name}": list(line.alerts)
                      for line in self.camera.lines})  # fmt: skip
        self.engine = AlertEngine(rules)
