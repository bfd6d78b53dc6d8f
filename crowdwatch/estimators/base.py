"""The interface every people estimator implements."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from crowdwatch.errors import EstimatorError
from crowdwatch.types import Anchor, Estimate

__all__ = ["Estimator", "EstimatorError"]


@runtime_checkable
class Estimator(Protocol):
    """Turns a BGR frame into an :class:`~crowdwatch.types.Estimate`.

    ``name`` identifies the backend in outputs (for example ``"density"``, ``"ssd"``, ``"yolo"``).
    ``anchor`` says where it places people: :attr:`Anchor.FEET` (detectors: the bottom of each
    box) or :attr:`Anchor.HEAD` (density models trained on head annotations); every
    :class:`Estimate` it returns carries the same anchor, so calibrated measures can put people on
    the ground whatever wraps the estimator. ``estimate`` must return a density map of the frame's
    height and width whose sum is the count.
    """

    name: str
    anchor: Anchor
    model_file: Path  # the weights it runs (named, with their hash, in a run's summary)

    def estimate(self, image: np.ndarray) -> Estimate:
        """Estimate people in one BGR uint8 image of shape (H, W, 3)."""
        ...
