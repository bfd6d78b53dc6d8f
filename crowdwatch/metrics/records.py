"""The metric records one analysed frame produces: one per zone and one per counting line."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

# Fields of a record that name it rather than measure it.
_IDENTITY = {"camera", "zone", "line", "frame_index", "time_s", "level", "level_of_service"}


@dataclass(frozen=True)
class ZoneMetrics:
    """What was measured in one zone of one frame.

    Attributes:
        count: people in the zone.
        area_m2: walkable ground area; None without calibration or a configured area.
        density: people per m² of ground (None when the area is unknown).
        occupancy: count / capacity (None without a capacity).
        level_of_service: Fruin walkway level (A-F) of the density.
        mean_speed: people-weighted mean ground speed, m/s (calibrated cameras).
        flow_rate: specific flow, density x speed, people per metre per minute.
        pressure: crowd pressure, density x local velocity variance, 1/s² (Helbing et al.).
        rise_rate: how fast the zone fills: people/m² per minute (people per minute uncalibrated).
        minutes_to_limit: forecast minutes until the zone's limit density at the current trend;
            None when it is not rising.
        stalled: density rising while the flow falls (the signature before crowd turbulence).
        level: the zone's current alert level.
    """

    camera: str
    zone: str
    frame_index: int
    time_s: float
    count: float
    area_m2: float | None = None
    density: float | None = None
    occupancy: float | None = None
    level_of_service: str | None = None
    mean_speed: float | None = None
    flow_rate: float | None = None
    pressure: float | None = None
    rise_rate: float | None = None
    minutes_to_limit: float | None = None
    stalled: bool = False
    level: str = "normal"

    @property
    def target(self) -> str:
        """The alert engine's id for this zone."""
        return f"{self.camera}/{self.zone}"

    def alert_inputs(self) -> dict[str, float | None]:
        """The values alert rules can watch."""
        return _numeric(self)

    def as_row(self) -> dict[str, object]:
        """A flat dict for CSV, rounded for readability."""
        return _row(self)

    def with_level(self, level: str) -> ZoneMetrics:
        return replace(self, level=level)


@dataclass(frozen=True)
class LineMetrics:
    """The flow across one counting line at one analysed frame.

    Attributes:
        flow_in, flow_out: people per metre of line per minute towards the positive ("in") and
            the other side, over the interval since the previous analysed frame.
        flow_rate: both directions together, people/m/min (what flow rules watch).
        crossed_in, crossed_out: people that crossed each way since the start (cumulative).
        length_m: the line's length on the ground.
    """

    camera: str
    line: str
    frame_index: int
    time_s: float
    length_m: float
    flow_in: float
    flow_out: float
    flow_rate: float
    crossed_in: float
    crossed_out: float
    level_of_service: str | None = None
    level: str = "normal"

    @property
    def target(self) -> str:
        """The alert engine's id for this line."""
        return f"{self.camera}/{self.line}"

    def alert_inputs(self) -> dict[str, float | None]:
        return _numeric(self)

    def as_row(self) -> dict[str, object]:
        return _row(self)

    def with_level(self, level: str) -> LineMetrics:
        return replace(self, level=level)


def measure_zone(
    camera: str,
    zone_name: str,
    frame_index: int,
    time_s: float,
    count: float,
    area_m2: float | None,
    capacity: int | None,
) -> ZoneMetrics:
    """Combine a zone's count with its area and capacity into a metrics record."""
    density = count / area_m2 if area_m2 else None
    occupancy = count / capacity if capacity else None
    return ZoneMetrics(camera, zone_name, frame_index, time_s, count, area_m2, density, occupancy)


def _numeric(record: ZoneMetrics | LineMetrics) -> dict[str, float | None]:
    return {
        name: (float(value) if value is not None else None)
        for name, value in asdict(record).items()
        if name not in _IDENTITY and (value is None or isinstance(value, int | float))
    }


def _row(record: ZoneMetrics | LineMetrics) -> dict[str, object]:
    row = asdict(record)
    for key, value in row.items():
        if isinstance(value, bool):
            row[key] = int(value)
        elif isinstance(value, float):
            row[key] = round(value, 4) if math.isfinite(value) else ""
        elif value is None:
            row[key] = ""
    row["time_s"] = round(record.time_s, 3)
    return row
