"""Plain data types shared by every stage.

Data flows one way: source -> estimator -> metrics -> alerts -> store -> console.

Every estimator returns one :class:`Estimate`; every zone, heat map and annotator takes it
(the same role supervision's ``Detections`` plays).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One decoded video frame and where it sits in its source.

    Attributes:
        image: BGR uint8 array of shape (H, W, 3), as OpenCV decodes it.
        index: 0-based index of the frame in its source.
        time_s: seconds since the start of the source (video time for files, wall time for live).
        source: a printable name of the source (path, URL or camera name).
    """

    image: np.ndarray
    index: int
    time_s: float
    source: str = ""

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])


@dataclass(frozen=True)
class Estimate:
    """What an estimator sees in one frame.

    ``density`` is a float32 map with the frame's height and width whose sum is the number of
    people; ``points`` are people positions in pixels (x, y), used for drawing, tracking and
    counting lines. Detectors fill ``boxes`` and ``scores`` too, trackers ``track_ids``.

    Example:
        >>> import numpy as np
        >>> density = np.zeros((4, 6), np.float32); density[1, 2] = 1.0
        >>> Estimate(density=density, points=np.array([[2.0, 1.0]], np.float32)).count
        1.0
    """

    density: np.ndarray
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    boxes: np.ndarray | None = None
    scores: np.ndarray | None = None
    track_ids: np.ndarray | None = None

    @property
    def count(self) -> float:
        """Estimated number of people in the frame (the density map's mass)."""
        return float(self.density.sum(dtype=np.float64))

    def count_in(self, mask: np.ndarray) -> float:
        """Estimated number of people inside a boolean mask of the frame's shape."""
        return float(self.density[mask].sum(dtype=np.float64))
