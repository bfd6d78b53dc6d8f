"""Colouring heat maps so that they read well laid over video."""

from __future__ import annotations

import cv2
import numpy as np


def colorize(values: np.ndarray, vmax: float, colormap: int = cv2.COLORMAP_TURBO) -> np.ndarray:
    """Map a float image to BGR with ``vmax`` (and above) at the top of the colour map."""
    scale = 255.0 / vmax if vmax > 0 else 0.0
    levels = np.clip(np.nan_to_num(values) * scale, 0, 255).astype(np.uint8)
    return cv2.applyColorMap(levels, colormap)


def overlay(
    frame: np.ndarray,
    values: np.ndarray,
    vmax: float,
    max_alpha: float = 0.6,
    colormap: int = cv2.COLORMAP_TURBO,
) -> np.ndarray:
    """Lay a heat map over a BGR frame; empty areas stay clear so the video shows through.

    Opacity grows with the value (up to ``max_alpha`` at ``vmax``), which keeps the scene legible
    where nobody stands instead of tinting the whole frame blue.

    The frame stays uint8: the value is quantised once to the colour map's 256 levels, the
    opacity is a look-up of that level, and OpenCV blends, only inside the box of the pixels
    above level 0 (the others are left as they are).
    """
    if vmax <= 0:
        return frame.copy()
    finite = values if not np.isnan(values).any() else np.nan_to_num(values)
    levels = _levels(finite, 255.0 / vmax)
    image = frame.copy()
    x, y, width, height = cv2.boundingRect(levels)  # the box of the non-zero levels
    if width == 0 or height == 0:
        return image
    box = (slice(y, y + height), slice(x, x + width))
    colours = cv2.applyColorMap(levels[box], colormap)
    alpha = cv2.LUT(levels[box], _alpha_table(float(max_alpha)))
    image[box] = cv2.blendLinear(frame[box], colours, 1.0 - alpha, alpha)
    return image


def _levels(values: np.ndarray, scale: float) -> np.ndarray:
    """uint8 levels of ``values * scale``, rounded and clipped to 0 - 255."""
    return cv2.convertScaleAbs(cv2.max(np.asarray(values, np.float32), 0.0), alpha=scale)


def _alpha_table(max_alpha: float) -> np.ndarray:
    """Opacity per level: sqrt of the level's share of the top, times ``max_alpha``."""
    table = _ALPHA_TABLES.get(max_alpha)
    if table is None:
        table = (np.sqrt(np.arange(256, dtype=np.float32) / 255.0) * max_alpha).astype(np.float32)
        _ALPHA_TABLES[max_alpha] = table
    return table


_ALPHA_TABLES: dict[float, np.ndarray] = {}


def smooth_for_display(density: np.ndarray, sigma_px: float) -> np.ndarray:
    """Blur a density map so that single people read as soft blobs rather than specks."""
    if sigma_px <= 0:
        return density
    return cv2.GaussianBlur(density, (0, 0), sigma_px)
