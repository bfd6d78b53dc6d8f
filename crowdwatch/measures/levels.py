"""Level-of-service and crowd-safety bands: named intervals of a measure, all configurable.

Defaults come from ``shared/research/crowd-safety.md``: Fruin's walkway levels of service for
density and flow, and a safety scale (free walking to crush) from Still, the EPJ Data Science
chart and the Itaewon investigation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LevelBands:
    """Named, ordered bands of a measure.

    ``names[i]`` covers ``[bounds[i-1], bounds[i])``; the first band starts at -inf, the last
    ends at +inf, so there is one more name than bounds.

    Example:
        >>> FRUIN_WALKWAY_DENSITY.level(0.9)
        'D'
    """

    names: tuple[str, ...]
    bounds: tuple[float, ...]
    unit: str = ""

    def __post_init__(self) -> None:
        if len(self.names) != len(self.bounds) + 1:
            raise ValueError(
                f"bands need one name more than bounds: {len(self.names)} names, "
                f"{len(self.bounds)} bounds"
            )
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"band names must be distinct: {self.names}")
        if not all(np.isfinite(self.bounds)) or any(
            b <= a for a, b in zip(self.bounds, self.bounds[1:], strict=False)
        ):
            raise ValueError(f"band bounds must be finite and strictly increasing: {self.bounds}")

    @classmethod
    def from_pairs(
        cls, pairs: Sequence[tuple[str, float]], last: str, unit: str = ""
    ) -> LevelBands:
        """Build from (name, upper bound) pairs plus the name of the open-ended last band."""
        return cls(tuple(n for n, _ in pairs) + (last,), tuple(float(b) for _, b in pairs), unit)

    def index(self, value: float) -> int:
        """Index of the band ``value`` falls in (NaN -> -1)."""
        if not np.isfinite(value) and not np.isinf(value):
            return -1
        return int(np.searchsorted(np.asarray(self.bounds), value, side="right"))

    def level(self, value: float) -> str | None:
        """Name of the band ``value`` falls in (None for NaN)."""
        position = self.index(value)
        return None if position < 0 else self.names[position]

    def indices(self, values: np.ndarray) -> np.ndarray:
        """Band indices for an array (NaN -> -1)."""
        values = np.asarray(values, dtype=np.float64)
        result = np.searchsorted(np.asarray(self.bounds), values, side="right")
        return np.where(np.isnan(values), -1, result)

    def lower_bound(self, name: str) -> float:
        """Where band ``name`` starts (-inf for the first)."""
        position = self.names.index(name)
        return -np.inf if position == 0 else self.bounds[position - 1]


#: Fruin walkway level of service by density, people/m² (converted from ft² per person).
FRUIN_WALKWAY_DENSITY = LevelBands(
    names=("A", "B", "C", "D", "E", "F"),
    bounds=(0.31, 0.43, 0.72, 1.08, 2.15),
    unit="people/m²",
)

#: Fruin walkway level of service by flow, people per metre per minute.
FRUIN_WALKWAY_FLOW = LevelBands(
    names=("A", "B", "C", "D", "E", "F"),
    bounds=(23.0, 33.0, 49.0, 66.0, 82.0),
    unit="people/m/min",
)

#: Crowd-safety density scale, people/m²: what happens to people at each density.
CROWD_SAFETY_DENSITY = LevelBands(
    names=("free", "restricted", "slowed", "contact", "critical", "dangerous", "crush"),
    bounds=(0.43, 2.0, 3.5, 4.0, 5.0, 8.0),
    unit="people/m²",
)


def density_level_of_service(
    people_per_m2: float, bands: LevelBands = FRUIN_WALKWAY_DENSITY
) -> str | None:
    """Level of service (A-F by default) for a density in people per m²."""
    return bands.level(people_per_m2)


def flow_level_of_service(
    people_per_m_min: float, bands: LevelBands = FRUIN_WALKWAY_FLOW
) -> str | None:
    """Level of service (A-F by default) for a flow in people per metre per minute."""
    return bands.level(people_per_m_min)


def safety_level(people_per_m2: float, bands: LevelBands = CROWD_SAFETY_DENSITY) -> str | None:
    """Crowd-safety level name (``free`` ... ``crush`` by default) for a density."""
    return bands.level(people_per_m2)
