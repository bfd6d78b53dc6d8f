"""The venue's analysis step: the cameras' latest ground grids in, venue zone and gate records out.

One :class:`VenueAnalyzer` per run holds the venue grid, each camera's place on it, the zones'
masks and trend histories and the venue's alert engine. Each tick (whenever the analysis path
has new camera results; every camera frame or a fixed rate), :meth:`VenueAnalyzer.update` takes

* each camera's latest people/m² on its own ground grid (``FrameResult.ground_m2`` on
  ``scene.mapper.grid``),
* the cameras' latest counting-line records (``camera/line`` -> :class:`LineMetrics`),
* each camera's health state (``"live"``, ``"stalled"``, ...),

and returns venue zone records (:class:`~crowdwatch.types.ZoneMetrics` with ``camera`` = the
venue's name, so the store, alert engine, Review page and what-if treat them like camera zones)
with the venue extras (covered fraction, known/unknown, gate in/out flows, mass-balance minutes
to critical), gate records (:class:`~crowdwatch.types.LineMetrics`, ``line`` = the gate's name,
``length_m`` = its clear width), the fused grid and the alert events.

An unknown zone feeds its alert rules no values (missing samples: they neither raise nor clear
an alert), and its ``level`` is at least ``warning`` (ranked like one, shown grey).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from crowdwatch.alerts import AlertEngine, AlertEvent, zone_rules
from crowdwatch.calibration import GroundCalibration
from crowdwatch.measures import density_level_of_service, minutes_at_trend, trend
from crowdwatch.types import LineMetrics, ZoneMetrics
from crowdwatch.venue.checks import covering_cameras
from crowdwatch.venue.fusion import (
    DEFAULT_EDGE_MARGIN_PX,
    CameraGround,
    CameraView,
    FusedGrid,
    VenueFusion,
    venue_grid,
)
from crowdwatch.venue.measures import (
    GateFlow,
    gate_flow,
    measure_zone,
    minutes_to_critical,
    net_inflow,
    zone_mask,
)
from crowdwatch.venue.settings import VenueConfig
from crowdwatch.venue.state import ZoneStatus, display_level, is_live, zone_status

#: Trailing window of the trend-based forecast (the camera zones' default).
TREND_WINDOW_S = 60.0


@dataclass(frozen=True)
class VenueZoneRecord:
    """A venue zone at one tick.

    Attributes:
        metrics: the zone as a camera-zone record (camera = venue name): count, area, density
            (over the covered area), occupancy, level of service, rise rate, trend-based
            ``minutes_to_limit`` (labelled "trend"), level (display level: unknown ranks as a
            warning).
        covered_fraction: the share of the zone live cameras see (a metric of its own).
        status: known / unknown, with the reason and the cameras down.
        inflow_per_min, outflow_per_min: through its gates (None: no gates or one unmeasured).
        minutes_to_critical: mass balance (rho_c - rho) A / (in - out) (labelled "mass balance").
    """

    metrics: ZoneMetrics
    covered_fraction: float
    status: ZoneStatus
    inflow_per_min: float | None
    outflow_per_min: float | None
    minutes_to_critical: float | None

    @property
    def target(self) -> str:
        """The alert engine's and the store's id: ``venue/zone``."""
        return self.metrics.target

    def alert_inputs(self) -> dict[str, float | None]:
        """The values alert rules watch; all missing while the zone is unknown."""
        values = self.metrics.alert_inputs()
        if self.status.unknown:
            return dict.fromkeys(values)
        return values

    def as_row(self) -> dict[str, object]:
        """A flat dict for CSV / the store: the zone record's columns and the venue extras."""
        row = self.metrics.as_row()
        row.update(
            covered_fraction=round(self.covered_fraction, 4),
            state=self.status.state.value,
            state_reason=self.status.reason,
            inflow_per_min=_round(self.inflow_per_min),
            outflow_per_min=_round(self.outflow_per_min),
            minutes_to_critical=_round(self.minutes_to_critical),
        )
        return row


@dataclass(frozen=True)
class VenueResult:
    """One tick of the venue: the fused grid, zone and gate records, alert events."""

    time_s: float
    fused: FusedGrid
    zones: tuple[VenueZoneRecord, ...]
    gates: tuple[LineMetrics, ...]
    flows: Mapping[str, GateFlow]
    events: tuple[AlertEvent, ...]


class VenueAnalyzer:
    """Fuses the cameras on the venue grid and measures its zones and gates, tick by tick.

    ``cameras``: name -> (people-plane calibration in venue metres, frame width, height); the
    plane is ``scene.people_plane`` (``scene.mapper.calibration``) of each calibrated camera.

    Example:
        >>> cameras = {name: (s.people_plane, s.width, s.height)  # doctest: +SKIP
        ...            for name, s in scenes.items()}
        >>> analyzer = VenueAnalyzer(config.venue, cameras)  # doctest: +SKIP
        >>> result = analyzer.update(t, grids, line_records, health)  # doctest: +SKIP
    """

    def __init__(
        self,
        venue: VenueConfig,
        cameras: Mapping[str, tuple[GroundCalibration, int, int]],
        *,
        run_id: str = "",
        window_s: float = TREND_WINDOW_S,
        edge_margin_px: float = DEFAULT_EDGE_MARGIN_PX,
    ) -> None:
        self.venue = venue
        self.window_s = window_s
        self.grid = venue_grid(venue.bounds_m(), venue.cell_m)
        self.views = [
            CameraView.from_calibration(
                name, plane, width, height, self.grid, edge_margin_px=edge_margin_px
            )
            for name, (plane, width, height) in cameras.items()
        ]
        self.fusion = VenueFusion(self.grid, self.views)
        self.masks = {z.name: zone_mask(self.grid, z.name, z.polygon_m) for z in venue.zones}
        self.covering = {
            zone.name: [
                view.name
                for view in self.views
                if self.masks[zone.name].covered_area_m2(view.covers, self.grid.cell_m) > 0
            ]
            for zone in venue.zones
        }
        footprints = {view.name: view.footprint for view in self.views}
        self.gate_cameras = {
            gate.name: covering_cameras(gate.segment.buffer(0.01), footprints)
            for gate in venue.gates
        }
        self._history: dict[str, deque[tuple[float, float]]] = {
            zone.name: deque() for zone in venue.zones
        }
        self._crossed = {gate.name: [0.0, 0.0] for gate in venue.gates}
        self._last_time: float | None = None
        rules = {
            f"{venue.name}/{zone.name}": zone_rules(zone.alerts, area_known=True)
            for zone in venue.zones
        }
        rules.update({f"{venue.name}/{gate.name}": list(gate.alerts) for gate in venue.gates})
        self.engine = AlertEngine(rules, run=run_id)

    def update(
        self,
        time_s: float,
        grids: Mapping[str, CameraGround],
        lines: Mapping[str, LineMetrics],
        health: Mapping[str, str | bool],
        *,
        frame_index: int = 0,
    ) -> VenueResult:
        """One tick: fuse the live cameras' latest grids, measure zones and gates, run alerts."""
        live = {name for name in grids if is_live(health.get(name))}
        fused = self.fusion.fuse(grids, live=live)
        live_lines = {
            target: record
            for target, record in lines.items()
            if is_live(health.get(target.partition("/")[0]))
        }
        flows = {gate.name: gate_flow(gate, live_lines) for gate in self.venue.gates}
        dt = 0.0 if self._last_time is None else max(time_s - self._last_time, 0.0)
        self._last_time = time_s
        events: list[AlertEvent] = []
        gates = [
            self._gate(flows[g.name], time_s, dt, frame_index, events) for g in self.venue.gates
        ]
        zones = [
            self._zone(zone, fused, flows, health, time_s, frame_index, events)
            for zone in self.venue.zones
        ]
        return VenueResult(time_s, fused, tuple(zones), tuple(gates), flows, tuple(events))

    def finish(self, time_s: float) -> list[AlertEvent]:
        """Close every open venue alert at the end of the run."""
        return self.engine.finish(time_s)

    def _zone(self, zone, fused, flows, health, time_s, frame_index, events) -> VenueZoneRecord:
        measure = measure_zone(fused, self.masks[zone.name])
        status = zone_status(
            zone.name,
            measure.covered_fraction,
            self.covering[zone.name],
            health,
            min_covered_fraction=self.venue.covered_threshold(zone),
        )
        history = self._history[zone.name]
        if not status.unknown and measure.density is not None:
            history.append((time_s, measure.density))
        while history and history[0][0] < time_s - 2 * self.window_s:
            history.popleft()
        times = [t for t, _ in history]
        values = [v for _, v in history]
        trend_minutes = rise = None
        if not status.unknown:
            fitted = trend(times, values, self.window_s)  # one fit: the rise and the forecast
            trend_minutes = minutes_at_trend(fitted, zone.critical_density)
            rise = None if fitted is None else fitted[0]
        balance = net_inflow(zone.name, self.venue.gates, flows)
        inflow, outflow = balance if balance is not None else (None, None)
        mass_minutes = None
        if balance is not None and not status.unknown:
            mass_minutes = minutes_to_critical(
                measure.density, zone.critical_density, zone.area_m2, inflow, outflow
            )
        density = measure.density
        metrics = ZoneMetrics(
            camera=self.venue.name,
            zone=zone.name,
            frame_index=frame_index,
            time_s=time_s,
            count=measure.count,
            area_m2=zone.area_m2,
            density=density,
            occupancy=measure.count / zone.capacity if zone.capacity else None,
            level_of_service=None if density is None else density_level_of_service(density),
            rise_rate=rise,
            minutes_to_limit=trend_minutes,
        )
        record = VenueZoneRecord(metrics, measure.covered_fraction, status, inflow, outflow,
                                 mass_minutes)  # fmt: skip
        events += self.engine.update(record.target, time_s, record.alert_inputs())
        level = display_level(status, self.engine.level(record.target))
        return replace(record, metrics=metrics.with_level(level))

    def _gate(self, flow: GateFlow, time_s, dt, frame_index, events) -> LineMetrics:
        crossed = self._crossed[flow.gate]
        if flow.inflow is not None and flow.outflow is not None:
            crossed[0] += flow.inflow * dt / 60.0
            crossed[1] += flow.outflow * dt / 60.0
        width = flow.width_m
        nan = float("nan")
        record = LineMetrics(
            camera=self.venue.name,
            line=flow.gate,
            frame_index=frame_index,
            time_s=time_s,
            length_m=width,
            flow_in=nan if flow.inflow is None else flow.inflow / width,
            flow_out=nan if flow.outflow is None else flow.outflow / width,
            flow_rate=nan if flow.flow_rate is None else flow.flow_rate,
            crossed_in=crossed[0],
            crossed_out=crossed[1],
        )
        events += self.engine.update(record.target, time_s, record.alert_inputs())
        return record.with_level(self.engine.level(record.target))


def _round(value: float | None) -> object:
    return "" if value is None or not np.isfinite(value) else round(value, 4)
