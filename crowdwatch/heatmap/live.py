"""A heat map that remembers: it builds up where people stay and fades when they leave."""

from __future__ import annotations

import cv2
import numpy as np


class LiveHeatmap:
    """Exponential moving average of density maps, in people per pixel, with a half-life in seconds.

    Weighting by elapsed time (not by frame) keeps the fade rate the same at any analysis rate,
    and a frame with nobody in it only pulls the map down by one step: it never blinks off.

    Example:
        >>> heat = LiveHeatmap(half_life_s=2.0)
        >>> one = np.ones((2, 2), np.float32)
        >>> _ = heat.update(one, time_s=0.0)
        >>> round(float(heat.update(np.zeros((2, 2), np.float32), time_s=2.0)[0, 0]), 3)
        0.5
    """

    def __init__(self, half_life_s: float = 3.0) -> None:
        if half_life_s <= 0:
            raise ValueError(f"heat map half-life must be positive, got {half_life_s}")
        self.half_life_s = half_life_s
        self._map: np.ndarray | None = None
        self._time_s: float | None = None

    @property
    def value(self) -> np.ndarray | None:
        """The current heat map, or None before the first update."""
        return self._map

    def update(self, density: np.ndarray, time_s: float) -> np.ndarray:
        """Blend in one frame's density map taken at ``time_s`` and return the heat map."""
        if self._map is None or self._map.shape != density.shape or self._time_s is None:
            self._map = density.astype(np.float32, copy=True)
        else:
            keep = self.retention(time_s - self._time_s)
            # heat = keep x heat + (1 - keep) x density, in one pass and in place.
            cv2.addWeighted(
                self._map, keep, density.astype(np.float32, copy=False), 1.0 - keep, 0.0,
                dst=self._map,
            )  # fmt: skip
        self._time_s = time_s
        return self._map

    def retention(self, elapsed_s: float) -> float:
        """Share of the old map kept after ``elapsed_s`` seconds."""
        return float(0.5 ** (max(elapsed_s, 0.0) / self.half_life_s))
