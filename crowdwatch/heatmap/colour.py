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
    """
    colours = colorize(values, vmax, colormap).astype(np.float32)
    share = np.clip(np.nan_to_num(values) / vmax, 0.0, 1.0) if vmax > 0 else np.zeros_like(values)
    alpha = (np.sqrt(share) * max_alpha).astype(np.float32)[..., None]
    blended = frame.astype(np.float32) * (1.0 - alpha) + colours * alpha
    return blended.astype(np.uint8)


def smooth_for_display(density: np.ndarray, sigma_px: float) -> np.ndarray:
    """Blur a density map so that single people read as soft blobs rather than specks."""
    if sigma_px <= 0:
        return density
    return cv2.GaussianBlur(density, (0, 0), sigma_px)
