"""Per-frame density images: each person a Gaussian whose mass is exactly 1; maps reduced with
their mass kept."""

from __future__ import annotations

import cv2
import numpy as np


def reduce_mass(density: np.ndarray, *, width: int, height: int) -> np.ndarray:
    """People per reduced pixel (height, width) float32: the density map's area mean over each
    reduced pixel times the full pixels it covers, (H x W) / (height x width), so the map still
    sums to the count.

    Example:
        >>> d = np.ones((8, 8), np.float32)
        >>> reduce_mass(d, width=4, height=4)[0, 0], float(reduce_mass(d, width=4, height=4).sum())
        (np.float32(4.0), 64.0)
    """
    small = cv2.resize(
        density.astype(np.float32, copy=False), (width, height), interpolation=cv2.INTER_AREA
    )
    small *= np.float32(density.shape[0] * density.shape[1] / (height * width))
    return small


def splat_points(
    points: np.ndarray, shape: tuple[int, int], sigmas: np.ndarray | float = 4.0
) -> np.ndarray:
    """Render people positions as a density map whose sum is the number of points.

    Each Gaussian is cut at 3 sigma and the part inside the frame is renormalised to 1, so a
    person near the border still counts once.

    Args:
        points: (N, 2) x, y positions in pixels.
        shape: (height, width) of the map.
        sigmas: one sigma in pixels for every point, or a single value for all.

    Example:
        >>> d = splat_points(np.array([[10.0, 5.0], [0.0, 0.0]]), (20, 30), 2.0)
        >>> round(float(d.sum()), 4)
        2.0
    """
    height, width = shape
    density = np.zeros((height, width), np.float32)
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    sig = np.broadcast_to(np.asarray(sigmas, np.float64), (len(pts),))
    for (x, y), sigma in zip(pts, sig, strict=True):
        _add_gaussian(density, x, y, max(float(sigma), 0.5))
    return density


def _add_gaussian(density: np.ndarray, x: float, y: float, sigma: float) -> None:
    height, width = density.shape
    xi = int(np.clip(round(x), 0, width - 1))
    yi = int(np.clip(round(y), 0, height - 1))
    radius = int(np.ceil(3 * sigma))
    x0, x1 = max(0, xi - radius), min(width, xi + radius + 1)
    y0, y1 = max(0, yi - radius), min(height, yi + radius + 1)
    gx = np.exp(-0.5 * ((np.arange(x0, x1) - x) / sigma) ** 2)
    gy = np.exp(-0.5 * ((np.arange(y0, y1) - y) / sigma) ** 2)
    patch = np.outer(gy, gx)
    total = patch.sum()
    if total <= 0:  # the point lies far outside the frame; keep its mass on the nearest pixel
        density[yi, xi] += 1.0
        return
    density[y0:y1, x0:x1] += (patch / total).astype(np.float32)
