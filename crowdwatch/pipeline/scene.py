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
from crowdwatch.calibration.settings import build_calibration
from crowdwatch.config.schema import CameraConfig
from crowdwatch.errors import ConfigError
from crowdwatch.motion import CountingLine
from crowdwatch.pipeline.geometry import geometry_problems
from crowdwatch.types import Anchor
from crowdwatch.zones import Zone


@dataclass(kw_only=True)
class Scene:
    """Everything geometric about one camera at one frame size.

    Attributes:
        anchor: where the estimator puts people (the plane ``people_plane`` is fitted to).
        calibration: the ground calibration (None when the camera has none).
        people_plane: the calibration of the plane where the estimator puts people (the ground
            for detectors, head height for the density model).
        zones: zones with their ground areas and counting polygons.
        lines: counting lines in the people plane (empty without calibration).
        mapper: density -> people per m² and bird's-eye grid (None without calibration).
    """

    width: int
    height: int
    anchor: Anchor
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


def build_scene(
    camera: CameraConfig,
    *,
    width: int,
    height: int,
    anchor: Anchor,
    pixel_aspect: float = 1.0,
) -> Scene:
    """The scene of ``camera`` for frames of ``width`` x ``height`` and an estimator whose people
    positions are at ``anchor``.

    ``camera``'s pixel coordinates are those of these frames (see
    :func:`crowdwatch.config.scaling.camera_for_frames`); ``pixel_aspect`` is the width over the
    height of one of their pixels (not 1 for a substream of another shape than the main stream),
    which the plane of heads needs.

    Raises:
        ConfigError: the camera's zones, lines or calibration do not fit frames of this size
            (the same checks as ``crowdwatch config check``), naming each problem.
    """
    problems = geometry_problems(camera, width=width, height=height)
    if problems:
        raise ConfigError("; ".join(problem.removeprefix("- ") for problem in problems))
    calibration = build_calibration(camera.calibration)
    plane = calibration
    if calibration is not None and anchor is Anchor.HEAD:
        plane = raised_calibration(
            calibration,
            camera.calibration.head_height_m,
            width,
            height,
            pixel_aspect=pixel_aspect,
        )
    scene = Scene(
        width=width,
        height=height,
        anchor=anchor,
        calibration=calibration,
        people_plane=plane,
        zones=[],
        lines=[],
        mapper=None,
    )
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
