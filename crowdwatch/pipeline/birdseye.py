"""The run's mean people per m² on the ground, seen from above (``birdseye.png``)."""

from __future__ import annotations

import cv2
import numpy as np

from crowdwatch.measures import DensityColourScale
from crowdwatch.pipeline.scene import Scene


class BirdsEyeAccumulator:
    """Averages the ground-plane density of every analysed frame of a calibrated camera."""

    def __init__(self, scale: DensityColourScale | None = None) -> None:
        self.scale = scale or DensityColourScale()
        self._sum: np.ndarray | None = None
        self._frames = 0
        self._bounds: tuple[float, float, float, float] | None = None

    def add(self, scene: Scene | None, density: np.ndarray) -> None:
        if scene is None or scene.mapper is None:
            return
        grid = scene.mapper.ground_grid(density)
        self._sum = grid.astype(np.float64) if self._sum is None else self._sum + grid
        self._frames += 1
        self._bounds = scene.mapper.grid.bounds

    def mean(self) -> np.ndarray | None:
        """Mean people per m² per ground cell (rows = y, columns = x), or None if uncalibrated."""
        return None if self._sum is None else (self._sum / self._frames).astype(np.float32)

    def image(self, pixels_per_cell: int = 3) -> np.ndarray | None:
        """The mean as a BGR picture in the crowd-safety colours, north (+y) up, with a scale."""
        mean = self.mean()
        if mean is None:
            return None
        picture = self.scale.colourize(mean)
        picture[mean < 0.01] = (40, 40, 40)
        picture = np.flipud(picture)  # rows grow with y; show +y upwards like a map
        picture = cv2.resize(
            picture, None, fx=pixels_per_cell, fy=pixels_per_cell, interpolation=cv2.INTER_NEAREST
        )
        x0, y0, x1, y1 = self._bounds
        text = f"{x1 - x0:.0f} m x {y1 - y0:.0f} m, mean over {self._frames} frames"
        cv2.putText(picture, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                    cv2.LINE_AA)  # fmt: skip
        return np.ascontiguousarray(picture)
