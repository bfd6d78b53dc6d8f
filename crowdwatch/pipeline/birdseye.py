"""The run's mean people per m² on the ground, seen from above (``birdseye.png``)."""

from __future__ import annotations

import cv2
import numpy as np

from crowdwatch.measures import DensityColourScale


class BirdsEyeAccumulator:
    """Averages the ground-plane density of every analysed frame of a calibrated camera."""

    def __init__(self, scale: DensityColourScale | None = None) -> None:
        self.scale = scale or DensityColourScale()
        self._sum: np.ndarray | None = None
        self._frames = 0
        self._cell_m = 0.2

    def add(self, ground_m2: np.ndarray, cell_m: float) -> None:
        """Fold in one frame's people per m² on the ground grid of ``cell_m`` metre cells."""
        self._sum = ground_m2.astype(np.float64) if self._sum is None else self._sum + ground_m2
        self._frames += 1
        self._cell_m = cell_m

    def mean(self) -> np.ndarray | None:
        """Mean people per m² per ground cell (rows = y, columns = x), or None if uncalibrated."""
        return None if self._sum is None else (self._sum / self._frames).astype(np.float32)

    def image(self, pixels_per_cell: int = 3, margin_cells: int = 10) -> np.ndarray | None:
        """The mean as a BGR picture, north (+y) up, cropped to where people were seen.

        Each cell takes its crowd-safety band's colour, brighter the more people passed there,
        so that the paths of a sparse scene show as well as the hot spots of a dense one.
        """
        mean = self.mean()
        if mean is None:
            return None
        background = np.array([40, 40, 40], np.float32)
        seen = mean >= 0.002
        strength = np.sqrt(np.clip(mean / max(float(mean.max()), 1e-6), 0.0, 1.0))[..., None]
        colours = self.scale.colourize(mean).astype(np.float32)
        picture = background + (colours - background) * (0.25 + 0.75 * strength)
        picture[~seen] = background
        rows, columns = np.nonzero(seen)
        if len(rows):
            top, bottom = max(rows.min() - margin_cells, 0), rows.max() + margin_cells + 1
            left, right = max(columns.min() - margin_cells, 0), columns.max() + margin_cells + 1
            picture = picture[top:bottom, left:right]
        picture = np.flipud(picture).astype(np.uint8)  # rows grow with y: show +y upwards
        picture = cv2.resize(
            picture, None, fx=pixels_per_cell, fy=pixels_per_cell, interpolation=cv2.INTER_NEAREST
        )
        cell = self._cell_m
        text = (
            f"{picture.shape[1] / pixels_per_cell * cell:.0f} m x "
            f"{picture.shape[0] / pixels_per_cell * cell:.0f} m, mean over {self._frames} frames, "
            f"peak {float(mean.max()):.2f}/m2"
        )
        cv2.putText(picture, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                    cv2.LINE_AA)  # fmt: skip
        return np.ascontiguousarray(picture)
