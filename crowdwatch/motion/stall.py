"""Stalled flow: density rising while the flow through the area falls.

The signature of a crowd heading for trouble (Helbing et al. 2007, Mina 2006): people keep
arriving, the outflow collapses, average speed stays above zero. Over a trailing window, the
robust trend of density must rise and the trend of flow fall.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from crowdwatch.measures.trends import rate_of_rise


@dataclass(frozen=True)
class StallState:
    """The outcome of :func:`detect_stalled_flow` for the latest sample."""

    stalled: bool
    density_rise_per_min: float | None
    flow_change_per_min: float | None


def detect_stalled_flow(
    times_s: Sequence[float],
    densities_m2: Sequence[float],
    flows_per_m_min: Sequence[float],
    window_s: float = 60.0,
    min_density_rise_per_min: float = 0.2,
    min_flow_drop_per_min: float = 5.0,
    min_density_m2: float = 1.0,
) -> StallState:
    """Whether the flow stalls: over the last ``window_s``, density rises and flow falls.

    Args:
        times_s: sample times, seconds, increasing.
        densities_m2: people per m² of the area at those times.
        flows_per_m_min: flow out of (or through) the area, people per metre per minute.
        min_density_rise_per_min: density must climb at least this fast (people/m² per minute).
        min_flow_drop_per_min: flow must fall at least this fast (people/m/min per minute).
        min_density_m2: below this density a falling flow is just a thinning crowd.

    Example:
        >>> times = list(range(0, 61, 5))
        >>> detect_stalled_flow(times, [1 + t / 60 for t in times], [60 - t / 2 for t in times])
        StallState(stalled=True, density_rise_per_min=1.0, flow_change_per_min=-30.0)
    """
    if not len(times_s) == len(densities_m2) == len(flows_per_m_min):
        raise ValueError("times, densities and flows must have the same length")
    rise = rate_of_rise(times_s, densities_m2, window_s)
    change = rate_of_rise(times_s, flows_per_m_min, window_s)
    stalled = flow_is_stalled(
        density_m2=densities_m2[-1],
        density_rise_per_min=rise,
        flow_change_per_min=change,
        min_density_rise_per_min=min_density_rise_per_min,
        min_flow_drop_per_min=min_flow_drop_per_min,
        min_density_m2=min_density_m2,
    )
    return StallState(stalled, rise, change)


def flow_is_stalled(
    *,
    density_m2: float,
    density_rise_per_min: float | None,
    flow_change_per_min: float | None,
    min_density_rise_per_min: float = 0.2,
    min_flow_drop_per_min: float = 5.0,
    min_density_m2: float = 1.0,
) -> bool:
    """:func:`detect_stalled_flow`'s test on trends already fitted: density (people/m²) at
    least ``min_density_m2``, rising at least ``min_density_rise_per_min`` (people/m² per
    minute), while the flow falls at least ``min_flow_drop_per_min`` (people/m/min per minute).
    A missing trend (None) is never a stall."""
    return bool(
        density_rise_per_min is not None
        and flow_change_per_min is not None
        and density_m2 >= min_density_m2
        and density_rise_per_min >= min_density_rise_per_min
        and flow_change_per_min <= -min_flow_drop_per_min
    )
