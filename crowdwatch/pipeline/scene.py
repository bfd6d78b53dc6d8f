"""A camera's geometry: calibration, zones and counting lines, in the estimator's terms.

Zones and lines are drawn on the ground. An estimator that places people at their heads (the
density model) sees them about 1.7 m higher, so the scene raises zones and lines to the plane of
heads for counting, and maps the density to the ground through that plane.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crowdwatch.calibration import CalibrationError, GroundCalibration, GroundDensityMapper
from crowdwatch.calibration.raised import raised_calibration
from crowdwatch.config.schema import CalibrationConfig, CameraConfig
from crowdwatch.motion import CountingLine
from crowdwatch.zones import Zone


@dataclass
class Scene:
    """Everything geometric about one camera at one frame size.

    Attributes:
        calibration: the ground calibration (None when the camera has none).
        people_plane: the calibration of the plane where the estimator puts people (the ground
            for detectors, head height for the density model).
        zones: zones with their ground areas and counting polygons.
        lines: counting lines in the people plane (empty without calibration).
        mapper: density -> people per m² and bird's-eye grid (None without calibration).
    """

    width: int
    height: int
    calibration: GroundCalibration | None
    people_plane: GroundCalibration | None
    zones: list[Zone]
    lines: list[CountingLine]
    mapper: GroundDensityMapper | None

    def raise_points(self, points: np.ndarray) -> np.ndarray:
        """Image points drawn on the ground, moved to where the estimator sees that ground."""
        if self.calibration is None or self.people_plane is self.calibration:
            return np.asarray(points, np.float32)
        ground = self.calibration.to_ground(points)
        return self.people_plane.to_image(ground).astype(np.float32)


def build_calibration(config: CalibrationConfig | None) -> GroundCalibration | None:
    """The camera's ground-plane calibration from its config section, if it has one."""
    if config is None:
        return None
    if config.rectangle is not None:
        return GroundCalibration.from_rectangle(config.rectangle, config.width_m, config.depth_m)
    return GroundCalibration.from_points(config.image_points, config.ground_points)


def build_scene(camera: CameraConfig, width: int, height: int, anchor: str) -> Scene:
    """The scene of ``camera`` for frames of ``width`` x ``height`` and an estimator whose people
    positions are at ``anchor`` (``"feet"`` or ``"head"``)."""
    calibration = build_calibration(camera.calibration)
    plane = calibration
    if calibration is not None and anchor == "head":
        plane = raised_calibration(calibration, camera.calibration.head_height_m, width, height)
    scene = Scene(width, height, calibration, plane, [], [], None)
    scene.zones = _zones(camera, scene)
    if calibration is not None:
        scene.lines = [
            CountingLine(
                line.name,
                tuple(scene.raise_points(np.array([line.start]))[0]),
                tuple(scene.raise_points(np.array([line.end]))[0]),
                line.positive,
            )
            for line in camera.lines
        ]
        scene.mapper = GroundDensityMapper(plane, (width, height))
    return scene


def _zones(camera: CameraConfig, scene: Scene) -> list[Zone]:
    if not camera.zones:
        zone = Zone.whole_frame(scene.width, scene.height)
        zone.area_m2 = _area(scene.calibration, zone.polygon)
        return [zone]
    zones = []
    for config in camera.zones:
        polygon = np.asarray(config.polygon, np.float32)
        area = config.area_m2
        if area is None and scene.calibration is not None:
            area = scene.calibration.polygon_area_m2(polygon)
        raised = None if scene.people_plane is scene.calibration else scene.raise_points(polygon)
        zones.append(Zone(config.name, polygon, area, config.capacity, raised))
    return zones


def _area(calibration: GroundCalibration | None, polygon: np.ndarray) -> float | None:
    """Ground area of a polygon, or None when it reaches above the horizon (shows sky)."""
    if calibration is None:
        return None
    try:
        return calibration.polygon_area_m2(polygon)
    except CalibrationError:
        return None
