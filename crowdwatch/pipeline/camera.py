"""One camera's analysis: frame -> estimate -> heat map -> zone metrics -> alert events.

``CameraAnalyzer`` holds the state that lives across frames (zones, live heat map, alert engine),
so the same object serves a recorded file and a live stream.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from crowdwatch.alerts import AlertEngine, AlertEvent, AlertRule, default_rules
from crowdwatch.annotate import draw_header, draw_heatmap, draw_points, draw_zones
from crowdwatch.calibration import CalibrationError, GroundCalibration
from crowdwatch.config.schema import CalibrationConfig, CameraConfig, HeatmapConfig, ZoneConfig
from crowdwatch.estimators.base import Estimator
from crowdwatch.heatmap import LiveHeatmap
from crowdwatch.metrics import ZoneMetrics, measure_zone
from crowdwatch.types import Estimate, Frame
from crowdwatch.zones import Zone


@dataclass
class FrameResult:
    """Everything one analysed frame produced."""

    frame: Frame
    estimate: Estimate
    heat: np.ndarray
    zones: list[ZoneMetrics]
    events: list[AlertEvent] = field(default_factory=list)
    estimator_ms: float = 0.0


def build_calibration(config: CalibrationConfig | None) -> GroundCalibration | None:
    """The camera's ground-plane calibration from its config section, if it has one."""
    if config is None:
        return None
    if config.rectangle is not None:
        return GroundCalibration.from_rectangle(config.rectangle, config.width_m, config.depth_m)
    return GroundCalibration.from_points(config.image_points, config.ground_points)


def build_zones(
    camera: CameraConfig, width: int, height: int, calibration: GroundCalibration | None
) -> list[Zone]:
    """The camera's zones with their ground areas; the whole frame when it has none."""
    if not camera.zones:
        return [Zone.whole_frame(width, height, _whole_frame_area(calibration, width, height))]
    return [_zone(config, calibration) for config in camera.zones]


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
        >>> [(z.zone, z.count, z.level) for z in result.zones]  # doctest: +SKIP
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
        self.calibration = build_calibration(camera.calibration)
        self.zones: list[Zone] = []
        self.engine: AlertEngine | None = None

    def process(self, frame: Frame) -> FrameResult:
        """Analyse one frame: estimate people, update the heat map, measure zones, run alerts."""
        if self.engine is None:
            self._start(*frame.size)
        started = time.perf_counter()
        estimate = self.estimator.estimate(frame.image)
        estimator_ms = (time.perf_counter() - started) * 1000
        heat = self.heatmap.update(estimate.density, frame.time_s)
        records, events = [], []
        for zone in self.zones:
            record = measure_zone(
                self.camera.name,
                zone.name,
                frame.index,
                frame.time_s,
                zone.count(estimate),
                zone.area_m2,
                zone.capacity,
            )
            events += self.engine.update(record.target, frame.time_s, record.alert_inputs())
            records.append(_with_level(record, self.engine.level(record.target).label))
        return FrameResult(frame, estimate, heat, records, events, estimator_ms)

    def finish(self, time_s: float) -> list[AlertEvent]:
        """Close every open alert at the end of the stream."""
        return self.engine.finish(time_s) if self.engine is not None else []

    def annotate(self, result: FrameResult) -> np.ndarray:
        """The frame with heat map, zones in their alert colours, people and a status line."""
        image = draw_heatmap(result.frame.image, result.heat, self.heatmap_config.opacity)
        draw_zones(image, self.zones, result.zones)
        draw_points(image, result.estimate.points)
        total = result.estimate.count
        draw_header(
            image,
            f"{self.camera.name}  t={result.frame.time_s:7.1f}s  "
            f"frame {result.frame.index}  people {total:.1f}",
        )
        return image

    def _start(self, width: int, height: int) -> None:
        self.zones = build_zones(self.camera, width, height, self.calibration)
        configs = {zone.name: zone for zone in self.camera.zones}
        rules = {
            f"{self.camera.name}/{zone.name}": zone_rules(
                configs.get(zone.name), bool(zone.area_m2)
            )
            for zone in self.zones
        }
        self.engine = AlertEngine(rules)


def _zone(config: ZoneConfig, calibration: GroundCalibration | None) -> Zone:
    polygon = np.asarray(config.polygon, np.float32)
    area = config.area_m2
    if area is None and calibration is not None:
        area = calibration.polygon_area_m2(polygon)
    return Zone(config.name, polygon, area, config.capacity)


def _whole_frame_area(
    calibration: GroundCalibration | None, width: int, height: int
) -> float | None:
    """Ground area of the full frame, or None when it shows sky (the horizon is in view)."""
    if calibration is None:
        return None
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    try:
        return calibration.polygon_area_m2(corners)
    except CalibrationError:
        return None


def _with_level(record: ZoneMetrics, level: str) -> ZoneMetrics:
    return replace(record, level=level)
