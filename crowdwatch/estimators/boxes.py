"""Turning person boxes from any detector into an :class:`Estimate`."""

from __future__ import annotations

import numpy as np

from crowdwatch.heatmap.density import splat_points
from crowdwatch.types import Anchor, Estimate


def estimate_from_boxes(
    boxes: np.ndarray,
    scores: np.ndarray,
    shape: tuple[int, int],
    track_ids: np.ndarray | None = None,
) -> Estimate:
    """One Gaussian of mass 1 per box, at the feet (bottom-centre), sized by the box width.

    The feet, not the box centre, are where a person stands on the ground plane, which is what
    zones and calibrated densities are drawn on.

    Example:
        >>> est = estimate_from_boxes(np.array([[10, 10, 30, 60]], np.float32),
        ...                           np.array([0.9], np.float32), (100, 100))
        >>> est.points.tolist(), round(est.count, 3)
        ([[20.0, 60.0]], 1.0)
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    feet = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3]], axis=1)
    sigmas = np.maximum((boxes[:, 2] - boxes[:, 0]) * 0.25, 2.0)
    return Estimate(
        density=splat_points(feet, shape, sigmas),
        points=feet.astype(np.float32),
        anchor=Anchor.FEET,
        boxes=boxes,
        scores=np.asarray(scores, np.float32).reshape(-1),
        track_ids=track_ids,
    )
