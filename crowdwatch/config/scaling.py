"""A camera's pixel coordinates on frames of another size: its substream, a smaller recording.

Every pixel coordinate of a camera (zone polygons, counting-line ends, calibration image points
or rectangle corners) is in the pixels of its ``frame_size``: the frames the operator drew them
on, the main stream. A frame of ``width`` x ``height`` pixels shows the drawn point (x, y) at::

    (x * width / frame_size[0], y * height / frame_size[1])

Ground coordinates (metres), areas, capacities and thresholds do not depend on pixels and are
kept. A homography fitted to scaled image points and the same ground points is the original one
composed with the inverse scaling, so every metre, m² and people/m² stays what it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from crowdwatch.calibration.settings import CalibrationConfig, Point
from crowdwatch.config.schema import CameraConfig, LineConfig, ZoneConfig

__all__ = ["analysed_source", "camera_for_frames", "frame_scale", "pixel_aspect"]


def analysed_source(camera: CameraConfig) -> str | int:
    """The stream or file a camera's analysis reads: its ``analysis_source`` (a lower-resolution
    substream of the same view) when it names one, else its ``source``."""
    return camera.analysis_source if camera.analysis_source is not None else camera.source


def frame_scale(camera: CameraConfig, *, width: int, height: int) -> tuple[float, float]:
    """(sx, sy): analysed pixels per drawn pixel, ``width / frame_size[0]`` and
    ``height / frame_size[1]``; (1, 1) when the camera has no ``frame_size`` (its coordinates
    are then in the analysed frames' own pixels)."""
    if camera.frame_size is None:
        return 1.0, 1.0
    return width / camera.frame_size[0], height / camera.frame_size[1]


def pixel_aspect(camera: CameraConfig, *, width: int, height: int) -> float:
    """Width over height of one pixel of ``width`` x ``height`` frames, measured in the drawn
    frames' pixels (taken as square): ``sy / sx`` of :func:`frame_scale`. 1.0 for a substream of
    the main stream's shape; about 1.45 for a 704x576 (D1) substream of a 1920x1080 camera."""
    sx, sy = frame_scale(camera, width=width, height=height)
    return sy / sx


def camera_for_frames(camera: CameraConfig, *, width: int, height: int) -> CameraConfig:
    """The camera with every pixel coordinate moved to frames of ``width`` x ``height`` pixels.

    A drawn point (x, y) becomes ``(x * width / W, y * height / H)``, where (W, H) is the
    camera's ``frame_size``, for zone polygons, line ends and calibration image points or
    rectangle corners; ``frame_size`` becomes (width, height). Ground points (metres), zone areas,
    capacities and alert rules are kept. The camera itself is returned when it has no
    ``frame_size`` or its frames already are ``width`` x ``height``.

    Example:
        >>> camera = CameraConfig(name="gate", source="main.mp4", frame_size=(1280, 720),
        ...     zones=[{"name": "z", "polygon": [[0, 0], [1280, 0], [640, 720]]}])
        >>> camera_for_frames(camera, width=640, height=360).zones[0].polygon
        [(0.0, 0.0), (640.0, 0.0), (320.0, 360.0)]
    """
    if camera.frame_size is None or tuple(camera.frame_size) == (width, height):
        return camera
    if width < 1 or height < 1:
        raise ValueError(f"frames must be at least 1x1 pixels, got {width}x{height}")
    scale = _Scale(drawn=camera.frame_size, width=width, height=height)
    return camera.model_copy(
        update={
            "frame_size": (width, height),
            "zones": [_scaled_zone(zone, scale) for zone in camera.zones],
            "lines": [_scaled_line(line, scale) for line in camera.lines],
            "calibration": _scaled_calibration(camera.calibration, scale),
        }
    )


@dataclass(frozen=True, kw_only=True)
class _Scale:
    """Drawn pixels -> analysed pixels. Multiplies before it divides, so that a point on the
    drawn frame's far edge lands exactly on the analysed frame's (1280 * 640 / 1280 == 640)."""

    drawn: tuple[int, int]
    width: int
    height: int

    def point(self, point: Sequence[float]) -> Point:
        x, y = point
        return x * self.width / self.drawn[0], y * self.height / self.drawn[1]

    def points(self, points: Sequence[Sequence[float]] | None) -> list[Point] | None:
        return None if points is None else [self.point(point) for point in points]


def _scaled_zone(zone: ZoneConfig, scale: _Scale) -> ZoneConfig:
    return zone.model_copy(update={"polygon": scale.points(zone.polygon)})


def _scaled_line(line: LineConfig, scale: _Scale) -> LineConfig:
    return line.model_copy(update={"start": scale.point(line.start), "end": scale.point(line.end)})


def _scaled_calibration(
    calibration: CalibrationConfig | None, scale: _Scale
) -> CalibrationConfig | None:
    if calibration is None:
        return None
    return calibration.model_copy(
        update={
            "image_points": scale.points(calibration.image_points),
            "rectangle": scale.points(calibration.rectangle),
        }
    )
