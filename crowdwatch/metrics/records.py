"""The metric records one analysed frame produces, one per zone (and later per line)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ZoneMetrics:
    """What was measured in one zone of one frame.

    ``density`` is in people per square metre of ground, or None when the zone's area is unknown
    (no calibration and no ``area_m2`` in the config).
    """

    camera: str
    zone: str
    frame_index: int
    time_s: float
    count: float
    area_m2: float | None = None
    density: float | None = None
    occupancy: float | None = None
    level: str = "normal"

    @property
    def target(self) -> str:
        """The alert engine's id for this zone."""
        return f"{self.camera}/{self.zone}"

    def alert_inputs(self) -> dict[str, float | None]:
        """The values alert rules can watch."""
        return {"count": self.count, "density": self.density, "occupancy": self.occupancy}

    def as_row(self) -> dict[str, object]:
        """A flat dict for CSV, rounding for readability."""
        row = asdict(self)
        for key in ("count", "density", "area_m2", "occupancy"):
            value = row[key]
            row[key] = "" if value is None or not math.isfinite(value) else round(value, 4)
        row["time_s"] = round(self.time_s, 3)
        return row


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
