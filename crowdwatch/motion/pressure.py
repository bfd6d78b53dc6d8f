"""Crowd pressure (Helbing, Johansson & Al-Abideen 2007): density times velocity variance.

P(x, t) = rho(x, t) * Var_x(V): where people are dense and their velocities scatter (pushing,
stop-and-go, turbulence), P climbs. Turbulence and the 2006 Mina disaster came where it peaked.
The variance is taken over people, not pixels: each pixel's velocity is weighted by its share
of people (the density map), so the still ground between walkers does not count as scatter.
"""

from __future__ import annotations

import cv2
import numpy as np


def crowd_pressure_map(
    density_m2: np.ndarray,
    velocity: np.ndarray,
    people: np.ndarray,
    window_px: float = 15.0,
) -> np.ndarray:
    """Crowd pressure (H, W) in 1/s²: people per m² times the local variance of velocity.

    Args:
        density_m2: people per m² (H, W), e.g. from ``GroundDensityMapper.per_m2``; NaN is 0.
        velocity: ground velocity (H, W, 2) in m/s of the crowd (``ground_velocity`` of
            ``crowd_flow``); NaN counts as no data.
        people: the density map (people per pixel, H x W) used as the variance's weights.
        window_px: Gaussian sigma, in pixels, of the neighbourhood the variance is taken over.
    """
    if velocity.shape[:2] != density_m2.shape or people.shape != density_m2.shape:
        raise ValueError(
            f"shapes differ: density_m2 {density_m2.shape}, velocity {velocity.shape}, "
            f"people {people.shape}"
        )
    valid = np.all(np.isfinite(velocity), axis=-1)
    weight = np.where(valid, np.maximum(people, 0), 0).astype(np.float32)
    vx = np.where(valid, velocity[..., 0], 0).astype(np.float32)
    vy = np.where(valid, velocity[..., 1], 0).astype(np.float32)
    wx, wy = weight * vx, weight * vy
    # The four weighted fields share one Gaussian: blur them as one 4-channel image.
    stacked = cv2.merge([weight, wx, wy, wx * vx + wy * vy])
    local = cv2.GaussianBlur(stacked, (0, 0), window_px)
    total = local[..., 0]
    inverse = 1.0 / np.maximum(total, 1e-12)
    mean_x, mean_y = local[..., 1] * inverse, local[..., 2] * inverse
    mean_square = local[..., 3] * inverse
    variance = np.clip(mean_square - mean_x**2 - mean_y**2, 0, None)
    variance[total <= 1e-9] = 0.0
    return (np.nan_to_num(density_m2) * variance).astype(np.float32)


def zone_pressure(
    density_m2: float,
    velocity: np.ndarray,
    people: np.ndarray,
    mask: np.ndarray,
) -> float:
    """Crowd pressure of a whole zone: its people per m² times its people's velocity variance.

    ``velocity`` (H, W, 2) m/s and ``people`` (H, W) weights as in :func:`crowd_pressure_map`;
    ``mask`` (H, W) bool selects the zone. Returns 0 when the zone holds no one.
    """
    if mask.shape != people.shape:
        raise ValueError(f"mask {mask.shape} and people {people.shape} differ in shape")
    valid = mask & np.all(np.isfinite(velocity), axis=-1) & (people > 0)
    weights = people[valid].astype(np.float64)
    if weights.sum() <= 0:
        return 0.0
    v = velocity[valid].astype(np.float64)
    mean = (weights[:, None] * v).sum(axis=0) / weights.sum()
    variance = float((weights * ((v - mean) ** 2).sum(axis=1)).sum() / weights.sum())
    return float(density_m2) * variance


def zone_mean_speed(velocity: np.ndarray, people: np.ndarray, mask: np.ndarray) -> float:
    """People-weighted mean ground speed (m/s) in a zone; 0 when the zone holds no one.

    With ``velocity`` from ``crowd_velocity``: a dense zone whose speed falls towards 0 while
    people keep arriving is a stalling crowd. ``mask`` selects the zone: boolean, or the share
    (0 - 1) of each pixel inside it (a zone's mask at a reduced size, see
    :meth:`crowdwatch.zones.Zone.coverage`).
    """
    if mask.shape != people.shape or velocity.shape[:2] != people.shape:
        raise ValueError(
            f"shapes differ: velocity {velocity.shape}, people {people.shape}, mask {mask.shape}"
        )
    speeds = np.hypot(velocity[..., 0], velocity[..., 1])
    inside = mask if mask.dtype == bool else mask > 0
    valid = inside & np.isfinite(speeds) & (people > 0)
    weights = people[valid].astype(np.float64)
    if mask.dtype != bool:
        weights *= mask[valid]
    total = weights.sum()
    if total <= 0:
        return 0.0
    return float((weights * speeds[valid]).sum() / total)


def people_weighted_mean(values: np.ndarray, people: np.ndarray, mask: np.ndarray) -> float:
    """Mean of a map over a zone's people (NaN counts as 0); ``mask`` boolean or a share."""
    weights = np.maximum(people, 0) * mask
    total = float(weights.sum(dtype=np.float64))
    if total <= 0:
        return 0.0
    return float((np.nan_to_num(values) * weights).sum(dtype=np.float64) / total)
