"""The bird's-eye density view: a camera's picture warped onto the ground, zones coloured by
people per m² in crowd-safety bands.

Example:
    >>> import numpy as np
    >>> from crowdwatch.calibration import GroundCalibration
    >>> calibration = GroundCalibration.from_rectangle(
    ...     [(100, 400), (500, 400), (420, 200), (180, 200)], width_m=4.0, depth_m=6.0)
    >>> zone = ZoneDensity("gate", np.array([(100, 400), (500, 400), (420, 200), (180, 200)]), 2.5)
    >>> view = birds_eye_view(np.zeros((480, 640, 3), np.uint8), calibration, [zone])
    >>> view.ndim, view.shape[2]
    (3, 3)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from crowdwatch.calibration import CalibrationError, GroundCalibration
from crowdwatch.measures.colour_scale import DensityColourScale

_MARGIN_M = 1.0


@dataclass(frozen=True)
class ZoneDensity:
    """A zone's image polygon (N, 2 pixels) and its latest people per m² (None: unknown)."""

    name: str
    polygon_px: np.ndarray
    density: float | None


def ground_bounds(
    calibration: GroundCalibration, polygons_px: Sequence[np.ndarray]
) -> tuple[float, float, float, float]:
    """(x_min, y_min, x_max, y_max) in metres around the polygons' ground footprints.

    Raises ``CalibrationError`` when none of the polygons lies on visible ground.
    """
    points = [
        calibration.to_ground(polygon)
        for polygon in polygons_px
        if len(polygon) and bool(np.all(calibration.sees_ground(polygon)))
    ]
    if not points:
        raise CalibrationError("no zone lies on ground the calibration can map")
    ground = np.concatenate(points)
    low, high = ground.min(axis=0) - _MARGIN_M, ground.max(axis=0) + _MARGIN_M
    return float(low[0]), float(low[1]), float(high[0]), float(high[1])


def birds_eye_view(
    picture: np.ndarray,
    calibration: GroundCalibration,
    zones: Sequence[ZoneDensity],
    max_side_px: int = 600,
    scale: DensityColourScale | None = None,
) -> np.ndarray:
    """A top-down BGR view of the zones' ground, each zone filled in its density band colour
    and labelled with its people per m² (ground y points up, as on a map)."""
    scale = scale or DensityColourScale()
    bounds = ground_bounds(calibration, [zone.polygon_px for zone in zones])
    extent = max(bounds[2] - bounds[0], bounds[3] - bounds[1])
    metres_per_pixel = extent / max_side_px
    view = calibration.birds_eye(picture, metres_per_pixel, bounds)
    to_view = np.linalg.inv(calibration.birds_eye_matrix(metres_per_pixel, bounds))
    overlay = view.copy()
    for zone in zones:
        polygon = _project(to_view, np.asarray(zone.polygon_px, np.float64))
        colour = (160, 160, 160) if zone.density is None else scale.colour_of(zone.density)
        cv2.fillPoly(overlay, [polygon], colour)
    view = cv2.addWeighted(overlay, 0.45, view, 0.55, 0)
    for zone in zones:
        polygon = _project(to_view, np.asarray(zone.polygon_px, np.float64))
        cv2.polylines(view, [polygon], True, (255, 255, 255), 2, cv2.LINE_AA)
        text = zone.name if zone.density is None else f"{zone.name} {zone.density:.2f}/m2"
        x, y = polygon.mean(axis=0).astype(int)
        cv2.putText(view, text, (int(x) - 40, int(y)), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (255, 255, 255), 1, cv2.LINE_AA)  # fmt: skip
    _draw_scale_bar(view, metres_per_pixel)
    return view


def _project(image_to_view: np.ndarray, polygon_px: np.ndarray) -> np.ndarray:
    points = cv2.perspectiveTransform(polygon_px.reshape(-1, 1, 2), image_to_view)
    return np.round(points.reshape(-1, 2)).astype(np.int32)


def _draw_scale_bar(view: np.ndarray, metres_per_pixel: float) -> None:
    """A 5 m (or 1 m on small areas) bar in the lower left corner."""
    metres = 5.0 if 5.0 / metres_per_pixel < view.shape[1] / 3 else 1.0
    length = int(round(metres / metres_per_pixel))
    y = view.shape[0] - 12
    cv2.line(view, (10, y), (10 + length, y), (255, 255, 255), 3)
    cv2.putText(view, f"{metres:g} m", (10, y - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (255, 255, 255), 1, cv2.LINE_AA)  # fmt: skip
