"""The interface every people estimator implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from crowdwatch.errors import EstimatorError
from crowdwatch.types import Estimate

__all__ = ["Estimator", "EstimatorError"]


@runtime_checkable
class Estimator(Protocol):
    """Turns a BGR frame into an :class:`~crowdwatch.types.Estimate`.

    ``name`` identifies the backend in outputs (for example ``"density"``, ``"ssd"``, ``"yolo"``).
    ``anchor`` says where it places people: ``"feet"`` (detectors: the bottom of each box) or
    ``"head"`` (density models trained on head annotations); calibrated measures use it to put
    people on the ground. ``estimate`` must return a density map of the frame's height and width
    whose sum is the count.
    """

    name: str
    anchor: str

    def estimate(self, image: np.ndarray) -> Estimate:
        """Estimate people in one BGR uint8 image of shape (H, W, 3)."""
        ...
