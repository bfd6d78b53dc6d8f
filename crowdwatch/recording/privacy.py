"""Privacy: blur people out of what is recorded. The store never holds identities, and with this
option the recorded video does not either."""

from __future__ import annotations

import cv2
import numpy as np

from crowdwatch.types import Estimate

# A person's share of the frame height: the radius of the patch hidden around each position.
PERSON_RADIUS = 0.06
# Density above this share of one person's peak density counts as "someone is here".
DENSITY_SHARE = 0.15


def people_mask(estimate: Estimate, shape: tuple[int, int]) -> np.ndarray:
    """Boolean (H, W) mask of where people are: their boxes, discs around their positions and
    the area where the density map shows someone.

    Example:
        >>> density = np.zeros((100, 100), np.float32); density[40:60, 40:60] = 1 / 400
        >>> mask = people_mask(Estimate(density=density, anchor="feet"), (100, 100))
        >>> bool(mask[50, 50]), bool(mask[5, 5])
        (True, False)
    """
    height, width = shape
    mask = np.zeros((height, width), np.uint8)
    radius = max(2, int(round(PERSON_RADIUS * height)))
    if estimate.boxes is not None:
        for x1, y1, x2, y2 in np.asarray(estimate.boxes, np.float32).reshape(-1, 4):
            pad_x, pad_y = 0.1 * (x2 - x1), 0.1 * (y2 - y1)
            cv2.rectangle(
                mask,
                (int(x1 - pad_x), int(y1 - pad_y)),
                (int(x2 + pad_x), int(y2 + pad_y)),
                1,
                thickness=-1,
            )
    for x, y in np.asarray(estimate.points, np.float32).reshape(-1, 2):
        cv2.circle(mask, (int(x), int(y)), radius, 1, thickness=-1)
    density = estimate.density
    if density is not None and density.shape == (height, width) and float(density.max()) > 0:
        # One person spread over a disc of the radius above: its density per pixel.
        one_person = 1.0 / (np.pi * radius * radius)
        present = density > DENSITY_SHARE * one_person
        mask |= cv2.dilate(present.astype(np.uint8), np.ones((radius, radius), np.uint8))
    return mask.astype(bool)


def blur_people(image: np.ndarray, estimate: Estimate, block: int = 12) -> np.ndarray:
    """A copy of the BGR image with people pixelated beyond recognition (blocks of ``block``
    pixels); the rest of the scene is untouched."""
    mask = people_mask(estimate, image.shape[:2])
    if not mask.any():
        return image.copy()
    height, width = image.shape[:2]
    small = cv2.resize(
        image, (max(1, width // block), max(1, height // block)), interpolation=cv2.INTER_AREA
    )
    pixelated = cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)
    out = image.copy()
    out[mask] = pixelated[mask]
    return out
