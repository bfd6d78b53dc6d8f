"""Zones: polygons of the image in which people are counted."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from crowdwatch.types import Estimate

WHOLE_FRAME = "frame"


@dataclass
class Zone:
    """A named polygon of the image, with its ground area when known.

    ``polygon`` is drawn on the ground. ``count_polygon`` is the same ground area as the
    estimator sees it: for an estimator that places people at their heads, the polygon raised to
    head height (see :func:`crowdwatch.calibration.raised_calibration`); None means ``polygon``.

    Example:
        >>> zone = Zone("gate", np.array([[0, 0], [10, 0], [10, 10], [0, 10]], np.float32))
        >>> int(zone.mask((20, 20)).sum())
        121
    """

    name: str
    polygon: np.ndarray
    area_m2: float | None = None
    capacity: int | None = None
    count_polygon: np.ndarray | None = None
    _masks: dict[tuple[int, int], np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def whole_frame(cls, width: int, height: int, area_m2: float | None = None) -> Zone:
        """The default zone when a camera has none: the full image."""
        corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
        return cls(WHOLE_FRAME, corners, area_m2)

    def mask(self, shape: tuple[int, int]) -> np.ndarray:
        """Boolean (H, W) mask of the pixels inside the zone, cached per frame shape."""
        key = (int(shape[0]), int(shape[1]))
        if key not in self._masks:
            canvas = np.zeros(key, np.uint8)
            outline = self.polygon if self.count_polygon is None else self.count_polygon
            cv2.fillPoly(canvas, [np.round(outline).astype(np.int32)], 1)
            self._masks[key] = canvas.astype(bool)
        return self._masks[key]

    def count(self, estimate: Estimate) -> float:
        """People inside the zone: the density map's mass over the zone's pixels."""
        return estimate.count_in(self.mask(estimate.density.shape))

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Which (x, y) points lie inside (or on the edge of) the polygon."""
        contour = self.polygon.reshape(-1, 1, 2).astype(np.float32)
        return np.array(
            [cv2.pointPolygonTest(contour, (float(x), float(y)), False) >= 0 for x, y in points],
            bool,
        )
