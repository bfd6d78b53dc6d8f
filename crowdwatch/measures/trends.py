"""Trends of a metric over time: rate of rise and the minutes left before a threshold.

Slopes are Theil-Sen (the median of the slopes between every pair of samples): one bad frame,
a miscount or a person walking past the camera, moves it very little, unlike least squares.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

#: The most samples a trend is computed from (evenly thinned beyond): keeps it O(1) per call.
MAX_TREND_SAMPLES = 120


def theil_sen(times: np.ndarray, values: np.ndarray) -> tuple[float, float] | None:
    """(slope, intercept) of the robust line through the samples; None if time does not vary."""
    first, second = _pairs(len(times))
    dt = times[second] - times[first]
    usable = dt > 0
    if not usable.any():
        return None
    slope = float(np.median((values[second] - values[first])[usable] / dt[usable]))
    intercept = float(np.median(values - slope * times))
    return slope, intercept


@lru_cache(maxsize=MAX_TREND_SAMPLES + 1)
def _pairs(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (i, j), i < j, of every pair of ``count`` samples (made once per count)."""
    first, second = np.triu_indices(count, k=1)
    first.flags.writeable = second.flags.writeable = False
    return first, second


def _window(
    times_s: Sequence[float], values: Sequence[float], window_s: float
) -> tuple[np.ndarray, np.ndarray]:
    times = np.asarray(times_s, dtype=np.float64).reshape(-1)
    data = np.asarray(values, dtype=np.float64).reshape(-1)
    if times.shape != data.shape:
        raise ValueError(f"{len(times)} times for {len(data)} values")
    if not window_s > 0:
        raise ValueError(f"window_s must be positive, got {window_s}")
    finite = np.isfinite(times) & np.isfinite(data)
    times, data = times[finite], data[finite]
    if len(times) == 0:
        return times, data
    recent = times >= times[-1] - window_s
    times, data = times[recent], data[recent]
    if len(times) > MAX_TREND_SAMPLES:
        keep = np.linspace(0, len(times) - 1, MAX_TREND_SAMPLES).round().astype(int)
        times, data = times[keep], data[keep]
    return times, data


def trend(
    times_s: Sequence[float],
    values: Sequence[float],
    window_s: float = 60.0,
    min_samples: int = 3,
) -> tuple[float, float] | None:
    """(slope per minute, fitted value at the last sample) over the trailing ``window_s``.

    None with fewer than ``min_samples`` finite samples in the window.
    """
    times, data = _window(times_s, values, window_s)
    if len(times) < max(2, min_samples):
        return None
    fit = theil_sen(times - times[-1], data)
    if fit is None:
        return None
    slope_per_s, value_now = fit
    return slope_per_s * 60.0, value_now


def rate_of_rise(
    times_s: Sequence[float],
    values: Sequence[float],
    window_s: float = 60.0,
    min_samples: int = 3,
) -> float | None:
    """How fast a metric climbs, in its units per minute, over the trailing ``window_s`` seconds.

    Negative when it falls; None without enough samples.

    Example:
        >>> rate_of_rise([0, 10, 20, 30], [1.0, 1.5, 2.0, 2.5])  # 0.05 per s
        3.0
    """
    fitted = trend(times_s, values, window_s, min_samples)
    return None if fitted is None else fitted[0]


def minutes_to_threshold(
    times_s: Sequence[float],
    values: Sequence[float],
    threshold: float,
    window_s: float = 60.0,
    min_samples: int = 3,
) -> float | None:
    """Minutes left before the metric reaches ``threshold`` at its current trend.

    0 when the fitted current value is already at or above it; None when it is not rising
    (or there are too few samples), i.e. no crossing is in sight.

    Example:
        >>> minutes_to_threshold([0, 30, 60], [1.0, 1.5, 2.0], threshold=4.0)  # +1 per minute
        2.0
    """
    return minutes_at_trend(
        trend(times_s, values, window_s=window_s, min_samples=min_samples), threshold
    )


def minutes_at_trend(fitted: tuple[float, float] | None, threshold: float) -> float | None:
    """:func:`minutes_to_threshold` from a :func:`trend` already fitted, (slope per minute,
    value now): (threshold - value now) / slope, 0 at or above it, None when not rising.

    Example:
        >>> minutes_at_trend((1.0, 2.0), threshold=4.0)
        2.0
    """
    if fitted is None:
        return None
    slope_per_min, value_now = fitted
    if value_now >= threshold:
        return 0.0
    if slope_per_min <= 0:
        return None
    return (threshold - value_now) / slope_per_min
