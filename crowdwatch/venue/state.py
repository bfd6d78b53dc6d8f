"""Fail loud: a venue zone nobody live is watching is ``unknown``, never "normal".

A zone is ``unknown`` when none of the cameras whose footprints cover it is live (stalled,
reconnecting, failed, stopped, starting), or when the live ones see less than the zone's
``min_covered_fraction``. An unknown zone ranks like a warning (see :func:`display_level`) and
is shown grey.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from crowdwatch.types import Level

#: Camera health states (``crowdwatch.store.records.CameraHealth.state``) that deliver frames.
LIVE_STATES = frozenset({"live"})


class ZoneState(str, Enum):
    """Whether a venue zone's figures can be trusted."""

    KNOWN = "known"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ZoneStatus:
    """A venue zone's state with its reasons.

    Attributes:
        state: known or unknown.
        covered_fraction: the share of the zone live cameras see.
        cameras: the cameras whose footprints cover part of the zone.
        down: those of them that are not live.
        reason: why it is unknown ("" when known).
    """

    zone: str
    state: ZoneState
    covered_fraction: float
    cameras: tuple[str, ...]
    down: tuple[str, ...]
    reason: str = ""

    @property
    def unknown(self) -> bool:
        """True when the zone's figures cannot be trusted."""
        return self.state is ZoneState.UNKNOWN


def is_live(state: str | bool | None) -> bool:
    """True for a camera health state that delivers frames (``"live"``, or True)."""
    if isinstance(state, bool):
        return state
    return state is not None and state.strip().lower() in LIVE_STATES


def zone_status(
    zone: str,
    covered_fraction: float,
    cameras: Iterable[str],
    health: Mapping[str, str | bool],
    *,
    min_covered_fraction: float = 0.8,
) -> ZoneStatus:
    """The state of ``zone``.

    ``covered_fraction`` is the share of the zone the *live* cameras see (from the fused grid
    built from live cameras only); ``cameras`` are the cameras whose footprints cover part of
    the zone; ``health`` is each camera's state (a store ``CameraHealth.state`` or a bool; a
    camera missing from it counts as not live).

    Example:
        >>> zone_status("concourse", 0.0, ["cam1"], {"cam1": "stalled"}).state
        <ZoneState.UNKNOWN: 'unknown'>
    """
    cameras = tuple(cameras)
    down = tuple(name for name in cameras if not is_live(health.get(name)))
    reason = ""
    if not cameras:
        reason = "no camera sees this zone"
    elif len(down) == len(cameras):
        reason = f"no camera covering it is live ({_states(down, health)})"
    elif covered_fraction < min_covered_fraction:
        reason = (
            f"live cameras see {covered_fraction:.0%} of it (at least "
            f"{min_covered_fraction:.0%} needed)"
        )
        if down:
            reason += f"; not live: {_states(down, health)}"
    state = ZoneState.UNKNOWN if reason else ZoneState.KNOWN
    return ZoneStatus(zone, state, float(covered_fraction), cameras, down, reason)


def display_level(status: ZoneStatus, level: Level) -> Level:
    """The level a zone is ranked and coloured by: an unknown zone at least as a warning."""
    return max(level, Level.WARNING) if status.unknown else level


def _states(names: tuple[str, ...], health: Mapping[str, str | bool]) -> str:
    def label(name: str) -> str:
        state = health.get(name)
        if isinstance(state, bool) or state is None:
            return "not live" if not state else "live"
        return state

    return ", ".join(f"{name}: {label(name)}" for name in names)
