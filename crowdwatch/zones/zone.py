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
    _coverages: dict[tuple[int, ...], np.ndarray] = field(default_factory=dict, repr=False)
    _boxes: dict[tuple[int, int], tuple[slice, slice, np.ndarray]] = field(
        default_factory=dict, repr=False
    )

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

    def coverage(self, shape: tuple[int, int], full_shape: tuple[int, int]) -> np.ndarray:
        """Share (0 - 1) of each pixel of a reduced (H, W) ``shape`` inside the zone, float32.

        The zone's mask at ``full_shape`` (the frame's) averaged over each reduced pixel, made
        once and cached: zone measures on a reduced field (speeds, pressure) weight by it.
        """
        key = (int(shape[0]), int(shape[1]), int(full_shape[0]), int(full_shape[1]))
        if key not in self._coverages:
            full = self.mask(full_shape).astype(np.float32)
            small = cv2.resize(full, (key[1], key[0]), interpolation=cv2.INTER_AREA)
            small.flags.writeable = False
            self._coverages[key] = small
        return self._coverages[key]

    def count(self, estimate: Estimate) -> float:
        """People inside the zone: the density map's mass over the zone's pixels."""
        rows, columns, inside = self._box(estimate.density.shape)
        return float(estimate.density[rows, columns][inside].sum(dtype=np.float64))

    def _box(self, shape: tuple[int, int]) -> tuple[slice, slice, np.ndarray]:
        """The mask's bounding box and the mask inside it (counting reads only that crop)."""
        key = (int(shape[0]), int(shape[1]))
        if key not in self._boxes:
            mask = self.mask(key)
            ys, xs = np.nonzero(mask)
            if len(ys) == 0:
                rows, columns = slice(0, 0), slice(0, 0)
            else:
                rows = slice(int(ys.min()), int(ys.max()) + 1)
                columns = slice(int(xs.min()), int(xs.max()) + 1)
            self._boxes[key] = (rows, columns, mask[rows, columns])
        return self._boxes[key]

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Which (x, y) points lie inside (or on the edge of) the polygon."""
        contour = self.polygon.reshape(-1, 1, 2).astype(np.float32)
        return np.array(
            [cv2.pointPolygonTest(contour, (float(x), float(y)), False) >= 0 for x, y in points],
            bool,
        )
