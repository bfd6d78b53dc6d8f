"""Venue measures, pure functions: zone counts on the fused grid, gate flows, time to critical.

* zone count = fused people/m² x cell area, summed over the zone's share of each cell (only the
  cells some live camera sees);
* covered fraction = the zone's area that live cameras see / its area;
* density = count / covered area (the mean people/m² where it is seen; with the whole zone
  covered, count / area);
* gate flow = the gate's counting lines' people/min each way (averaged over the cameras that
  see it: they count the same people);
* net inflow of a zone = what its gates bring in minus what they take out, people/min;
* mass-balance minutes to critical = (rho_c - rho) * A / (in - out).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import Polygon

from crowdwatch.calibration import GroundGrid
from crowdwatch.types import LineMetrics
from crowdwatch.venue.fusion import FusedGrid
from crowdwatch.venue.settings import GateConfig, Point


@dataclass(frozen=True)
class ZoneMask:
    """A venue zone rasterised on the venue grid: the share of each cell inside the polygon.

    ``share`` is (rows, columns) float32 in [0, 1] over the grid slice ``rows`` x ``columns``
    (the zone's bounding box), exact (polygon-cell intersections).
    """

    name: str
    area_m2: float
    rows: slice
    columns: slice
    share: np.ndarray

    def covered_area_m2(self, covered: np.ndarray, cell_m: float) -> float:
        """The zone's area in m² that ``covered`` (rows, columns of the grid) marks as seen."""
        return float((self.share * covered[self.rows, self.columns]).sum() * cell_m**2)


def zone_mask(grid: GroundGrid, name: str, polygon_m: Sequence[Point]) -> ZoneMask:
    """Rasterise a zone's polygon on ``grid`` (once per zone; the mask is reused every frame).

    Raises:
        ValueError: the polygon lies outside the grid (part of its area is off the venue grid).
    """
    polygon = Polygon(polygon_m)
    rows_n, columns_n = grid.shape
    x0, y0, x1, y1 = polygon.bounds
    c = grid.cell_m
    col_lo = max(int(np.floor((x0 - grid.x_min) / c)), 0)
    col_hi = min(int(np.ceil((x1 - grid.x_min) / c)), columns_n)
    row_lo = max(int(np.floor((grid.y_max - y1) / c)), 0)
    row_hi = min(int(np.ceil((grid.y_max - y0) / c)), rows_n)
    if col_hi <= col_lo or row_hi <= row_lo:
        raise ValueError(f"zone {name!r} lies outside the venue grid")
    cols = np.arange(col_lo, col_hi)
    rows = np.arange(row_lo, row_hi)
    cx, cy = np.meshgrid(grid.x_min + cols * c, grid.y_max - (rows + 1) * c)
    cells = shapely.box(cx, cy, cx + c, cy + c)
    share = (shapely.area(shapely.intersection(cells, polygon)) / c**2).astype(np.float32)
    if share.sum() * c**2 < polygon.area * (1 - 1e-6):
        raise ValueError(f"zone {name!r} reaches beyond the venue grid")
    return ZoneMask(name, float(polygon.area), slice(row_lo, row_hi), slice(col_lo, col_hi), share)


@dataclass(frozen=True)
class VenueZoneMeasure:
    """One venue zone at one moment.

    Attributes:
        count: people on the zone's covered part (fused mass inside the polygon).
        area_m2: the zone's area; covered_fraction: the share of it live cameras see.
        density: count / covered area, people/m² (None when nothing of it is seen).
    """

    zone: str
    count: float
    area_m2: float
    covered_fraction: float
    density: float | None


def zone_count(fused: FusedGrid, mask: ZoneMask) -> float:
    """People inside the zone on the fused grid (uncovered cells add nothing)."""
    values = np.nan_to_num(fused.per_m2[mask.rows, mask.columns])
    return float((values * mask.share).sum() * fused.grid.cell_m**2)


def covered_fraction(fused: FusedGrid, mask: ZoneMask) -> float:
    """The share of the zone's area some live camera sees, 0 to 1."""
    area = mask.covered_area_m2(fused.covered, fused.grid.cell_m)
    return min(area / mask.area_m2, 1.0) if mask.area_m2 > 0 else 0.0


def zone_density(count: float, area_m2: float) -> float | None:
    """People per m² over an area; None for no area."""
    return float(count) / float(area_m2) if area_m2 > 0 else None


def measure_zone(fused: FusedGrid, mask: ZoneMask) -> VenueZoneMeasure:
    """Count, covered fraction and density of one venue zone on the fused grid."""
    count = zone_count(fused, mask)
    fraction = covered_fraction(fused, mask)
    return VenueZoneMeasure(
        zone=mask.name,
        count=count,
        area_m2=mask.area_m2,
        covered_fraction=fraction,
        density=zone_density(count, fraction * mask.area_m2),
    )


@dataclass(frozen=True)
class GateFlow:
    """People per minute through a gate each way, and per metre of its width (Fruin).

    ``inflow`` goes the gate's "in" way (into its ``into`` zone), ``outflow`` the other;
    ``lines`` are the counting lines the figures came from (empty: no live line sees the gate,
    and the flows are None).
    """

    gate: str
    inflow: float | None
    outflow: float | None
    width_m: float
    lines: tuple[str, ...]

    @property
    def net(self) -> float | None:
        """inflow - outflow, people/min."""
        if self.inflow is None or self.outflow is None:
            return None
        return self.inflow - self.outflow

    @property
    def flow_rate(self) -> float | None:
        """Both ways together, people per metre of gate width per minute."""
        if self.inflow is None or self.outflow is None:
            return None
        return (self.inflow + self.outflow) / self.width_m


def gate_flow(gate: GateConfig, records: Mapping[str, LineMetrics]) -> GateFlow:
    """A gate's flow from its counting lines' latest records (``camera/line`` -> record).

    Each line gives people/min each way (its per-metre flows times its ground length), turned to
    the gate's sense when the line is ``reversed``. Several cameras seeing one gate count the
    same people, so their flows are averaged, never added. Lines without a record (camera not
    live) are left out.
    """
    ins, outs, used = [], [], []
    for line in gate.lines:
        record = records.get(line.target)
        if record is None:
            continue
        inflow, outflow = record.flow_in * record.length_m, record.flow_out * record.length_m
        if line.reversed:
            inflow, outflow = outflow, inflow
        ins.append(inflow)
        outs.append(outflow)
        used.append(line.target)
    if not used:
        return GateFlow(gate.name, None, None, gate.clear_width_m, ())
    return GateFlow(
        gate.name, float(np.mean(ins)), float(np.mean(outs)), gate.clear_width_m, tuple(used)
    )


def net_inflow(
    zone: str, gates: Sequence[GateConfig], flows: Mapping[str, GateFlow]
) -> tuple[float, float] | None:
    """(in, out) people/min of ``zone`` through its gates: a gate ``into`` the zone brings its
    inflow in and takes its outflow out, a gate ``out_of`` it the reverse. None when a gate of
    the zone has no live measurement (the balance is unknown) or the zone has no gates."""
    total_in = total_out = 0.0
    touched = False
    for gate in gates:
        if zone not in (gate.into, gate.out_of):
            continue
        touched = True
        flow = flows.get(gate.name)
        if flow is None or flow.inflow is None or flow.outflow is None:
            return None
        if gate.into == zone:
            total_in += flow.inflow
            total_out += flow.outflow
        else:
            total_in += flow.outflow
            total_out += flow.inflow
    return (total_in, total_out) if touched else None


def minutes_to_critical(
    density: float | None,
    critical_density: float,
    area_m2: float,
    inflow_per_min: float,
    outflow_per_min: float,
) -> float | None:
    """Minutes until the zone reaches ``critical_density`` by mass balance:
    (rho_c - rho) * A / (in - out).

    0 when it is already there; None when it is not filling (in <= out: never, at these flows)
    or its density is unknown.

    Example:
        >>> minutes_to_critical(2.0, 4.0, 300.0, 150.0, 30.0)  # 600 people of room, +120/min
        5.0
    """
    if density is None or not math.isfinite(density):
        return None
    if density >= critical_density:
        return 0.0
    net = inflow_per_min - outflow_per_min
    if net <= 0:
        return None
    return (critical_density - density) * area_m2 / net
