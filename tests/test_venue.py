"""The venue layer's pure parts: settings, fusion on synthetic grids, measures, state, CAP,
config checks."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import numpy as np
import pytest
from pydantic import ValidationError
from shapely.geometry import box

from crowdwatch.alerts import AlertEngine, AlertRule
from crowdwatch.alerts.records import AlertEvent
from crowdwatch.calibration import GroundCalibration, GroundGrid
from crowdwatch.types import Level, LineMetrics
from crowdwatch.venue import (
    CAP_NAMESPACE,
    CameraGround,
    CameraView,
    GateConfig,
    GeoAnchor,
    SitePlan,
    VenueAnalyzer,
    VenueConfig,
    VenueFusion,
    ZoneState,
    alert_to_cap,
    camera_footprint,
    display_level,
    gate_flow,
    measure_zone,
    minutes_to_critical,
    net_inflow,
    venue_grid,
    venue_problems,
    zone_mask,
    zone_status,
)

NS = {"cap": CAP_NAMESPACE}


def _venue(**extra) -> VenueConfig:
    settings = dict(
        name="arena",
        cell_m=0.5,
        zones=[
            {"name": "concourse", "polygon_m": [(0, 0), (20, 0), (20, 10), (0, 10)]},
            {"name": "plaza", "polygon_m": [(0, 10), (20, 10), (20, 20), (0, 20)]},
        ],
        gates=[
            {"name": "gate-a", "start_m": (5, 0), "end_m": (9, 0), "into": "concourse",
             "lines": [{"target": "cam1/gate"}]},
            {"name": "link", "start_m": (8, 10), "end_m": (12, 10), "width_m": 3,
             "into": "plaza", "out_of": "concourse", "lines": [{"target": "cam1/link"}]},
        ],
    )  # fmt: skip
    return VenueConfig(**{**settings, **extra})


# ----- settings ---------------------------------------------------------------------------------


def test_venue_config_validates_and_names_problems() -> None:
    venue = _venue()
    assert venue.zone("concourse").area_m2 == pytest.approx(200.0)
    assert venue.gates[0].clear_width_m == pytest.approx(4.0)
    with pytest.raises(ValidationError, match="crosses itself"):
        VenueConfig(name="v", zones=[{"name": "z", "polygon_m": [(0, 0), (1, 1), (1, 0), (0, 1)]}])
    with pytest.raises(ValidationError, match="'nowhere' is not a venue zone"):
        VenueConfig(name="v", gates=[{"name": "g", "start_m": (0, 0), "end_m": (1, 0),
                                      "into": "nowhere"}])  # fmt: skip
    with pytest.raises(ValidationError, match="two venue zones are named 'z'"):
        VenueConfig(name="v", zones=[{"name": "z", "polygon_m": [(0, 0), (1, 0), (1, 1)]}] * 2)
    with pytest.raises(ValidationError, match="same point"):
        GateConfig(name="g", start_m=(1, 1), end_m=(1, 1))
    with pytest.raises(ValidationError):  # rules are the camera zones' rules
        bad_rule = {"metric": "loudness", "levels": {"warning": 1}}
        VenueConfig(
            name="v",
            zones=[{"name": "z", "polygon_m": [(0, 0), (1, 0), (1, 1)], "alerts": [bad_rule]}],
        )
    with pytest.raises(ValidationError, match="extra"):
        VenueConfig(name="v", colour="red")


def test_site_plan_and_geo_anchor_map_venue_metres() -> None:
    plan = SitePlan(metres_per_pixel=0.1, origin_px=(100, 500), size_px=(1000, 600))
    assert plan.to_plan_px([(0, 0), (10, 5)]).tolist() == [[100, 500], [200, 450]]
    assert np.allclose(plan.to_venue_m(plan.to_plan_px([(3.5, -2)])), [(3.5, -2)])
    assert plan.bounds_m() == pytest.approx((-10.0, -10.0, 90.0, 50.0))
    north = GeoAnchor(lat=51.5, lon=-0.12, bearing_deg=0)
    (lat, lon), (lat2, lon2) = north.to_wgs84([(0, 0), (0, 111.195)])
    assert (lat, lon) == pytest.approx((51.5, -0.12))
    assert lat2 - lat == pytest.approx(0.001, rel=1e-3) and lon2 == pytest.approx(lon)
    east = GeoAnchor(lat=0, lon=0, bearing_deg=90).to_wgs84([(0, 1000)])[0]
    assert east[0] == pytest.approx(0.0, abs=1e-9) and east[1] > 0.0089


# ----- fusion -----------------------------------------------------------------------------------


def _top_down(
    x0: float, y0: float, size_m: float, px_per_m: float
) -> tuple[GroundCalibration, int]:
    """A camera looking straight down at the square [x0, x0+size] x [y0, y0+size]."""
    side = int(size_m * px_per_m)
    corners = [(0, side), (side, side), (side, 0), (0, 0)]
    ground = [(x0, y0), (x0 + size_m, y0), (x0 + size_m, y0 + size_m), (x0, y0 + size_m)]
    return GroundCalibration.from_points(corners, ground), side


def test_fusion_counts_an_overlap_once_and_is_the_weighted_mean() -> None:
    grid = venue_grid((0, 0, 20, 10), 0.5)
    cal_a, side_a = _top_down(0, 0, 12, 20)  # sees x 0..12
    cal_b, side_b = _top_down(8, 0, 12, 10)  # sees x 8..20, coarser
    a = CameraView.from_calibration("a", cal_a, side_a, side_a, grid, edge_margin_px=0)
    b = CameraView.from_calibration("b", cal_b, side_b, side_b, grid, edge_margin_px=0)
    fusion = VenueFusion(grid, [a, b])
    uniform = np.full(grid.shape, 0.5, np.float32)  # both cameras see 0.5 people/m² everywhere
    frames = {"a": CameraGround(grid, uniform), "b": CameraGround(grid, uniform)}
    fused = fusion.fuse(frames)
    mask = zone_mask(grid, "all", [(0, 0), (20, 0), (20, 10), (0, 10)])
    measure = measure_zone(fused, mask)
    assert measure.covered_fraction == pytest.approx(1.0)
    assert measure.count == pytest.approx(0.5 * 200, rel=1e-3)  # not 0.5 * (200 + 40 overlap)
    naive = float((fusion.naive_sum(frames) * mask.share).sum() * 0.25)
    assert naive > measure.count * 1.15
    # In the overlap the finer camera (20 px/m vs 10 px/m: 4x the pixels per m²) weighs 4x.
    frames["b"] = CameraGround(grid, np.full(grid.shape, 1.0, np.float32))
    overlap = fusion.fuse(frames).per_m2[5, 20]  # cell centre x = 10.25
    assert overlap == pytest.approx((4 * 0.5 + 1 * 1.0) / 5, rel=1e-3)
    # Camera b not live: its cells only it saw go uncovered (NaN), never zero.
    alone = fusion.fuse(frames, live={"a"})
    assert alone.cameras == ("a",)
    assert np.isnan(alone.per_m2[5, 30]) and not alone.covered[5, 30]
    assert measure_zone(alone, mask).covered_fraction == pytest.approx(0.6, abs=0.01)


def test_resampling_another_grid_keeps_the_people() -> None:
    venue = venue_grid((-3.1, -2.2, 6.9, 5.3), 0.25)
    camera = GroundGrid(-5.03, -4.11, 9.97, 7.07, cell_m=0.2)
    rng = np.random.default_rng(3)
    values = np.zeros(camera.shape, np.float32)
    values[20:40, 20:50] = rng.random((20, 30)).astype(np.float32)  # all inside the venue grid
    cal, side = _top_down(-10, -10, 30, 10)
    view = CameraView.from_calibration("c", cal, side, side, venue)
    moved = view.resample(camera, values, venue)
    assert moved.sum() * 0.25**2 == pytest.approx(values.sum() * 0.2**2, rel=1e-5)


def test_edge_taper_and_footprint() -> None:
    grid = venue_grid((0, 0, 10, 10), 0.5)
    cal, side = _top_down(0, 0, 10, 20)
    view = CameraView.from_calibration("c", cal, side, side, grid, edge_margin_px=40)
    assert view.weight[10, 0] < view.weight[10, 10] / 4  # 5 px from the edge vs the middle
    assert view.footprint.area == pytest.approx(100.0, rel=1e-3)
    # A camera looking at the horizon: its footprint is cut at max_range_m, never infinite.
    oblique = GroundCalibration.from_points(
        [(0, 400), (640, 400), (420, 200), (220, 200)], [(0, 0), (4, 0), (4, 8), (0, 8)]
    )
    footprint = camera_footprint(oblique, 640, 480, max_range_m=50)
    assert 0 < footprint.area <= 100 * 100 and footprint.is_valid


# ----- measures ---------------------------------------------------------------------------------


def test_mass_balance_minutes_to_critical_hand_computed() -> None:
    # 250 m² at 1.2 /m² filling to 4.0 /m²: (4.0 - 1.2) * 250 = 700 people of room;
    # 90 in, 20 out per minute: +70 /min -> 10 minutes.
    assert minutes_to_critical(1.2, 4.0, 250.0, 90.0, 20.0) == pytest.approx(10.0)
    assert minutes_to_critical(4.5, 4.0, 250.0, 90.0, 20.0) == 0.0  # already there
    assert minutes_to_critical(1.2, 4.0, 250.0, 20.0, 20.0) is None  # not filling
    assert minutes_to_critical(None, 4.0, 250.0, 90.0, 20.0) is None


def _line(target: str, flow_in: float, flow_out: float, length_m: float = 4.0) -> LineMetrics:
    camera, line = target.split("/")
    return LineMetrics(camera=camera, line=line, frame_index=0, time_s=0.0, length_m=length_m,
                       flow_in=flow_in, flow_out=flow_out, flow_rate=flow_in + flow_out,
                       crossed_in=0.0, crossed_out=0.0)  # fmt: skip


def test_gate_flows_and_net_inflow() -> None:
    venue = _venue()
    gate_a, link = venue.gates
    # gate-a: 10 people/m/min in over a 4 m line = 40 /min in, 2/m/min out = 8 /min out.
    records = {"cam1/gate": _line("cam1/gate", 10.0, 2.0), "cam1/link": _line("cam1/link", 5, 0)}
    flows = {g.name: gate_flow(g, records) for g in venue.gates}
    assert flows["gate-a"].inflow == pytest.approx(40.0) and flows["gate-a"].net == pytest.approx(
        32
    )
    assert flows["gate-a"].flow_rate == pytest.approx(48.0 / 4.0)
    # link goes from concourse into plaza: 20 /min leave the concourse.
    assert net_inflow("concourse", venue.gates, flows) == pytest.approx((40.0, 28.0))
    assert net_inflow("plaza", venue.gates, flows) == pytest.approx((20.0, 0.0))
    # Two cameras on one gate count the same people: averaged, not added; reversed lines turn.
    two = GateConfig(name="g", start_m=(0, 0), end_m=(2, 0),
                     lines=[{"target": "a/l"}, {"target": "b/l", "reversed": True}])  # fmt: skip
    both = gate_flow(two, {"a/l": _line("a/l", 10, 0, 2), "b/l": _line("b/l", 0, 12, 2)})
    assert both.inflow == pytest.approx(22.0) and both.outflow == pytest.approx(0.0)
    # The camera behind gate-a down: the concourse's balance is unknown, not zero.
    flows["gate-a"] = gate_flow(gate_a, {})
    assert flows["gate-a"].inflow is None and net_inflow("concourse", venue.gates, flows) is None


# ----- state ------------------------------------------------------------------------------------


def test_zone_goes_unknown_when_its_camera_is_not_live_or_covers_too_little() -> None:
    ok = zone_status("concourse", 0.95, ["cam1", "cam2"], {"cam1": "live", "cam2": "live"})
    assert ok.state is ZoneState.KNOWN and ok.reason == ""
    stalled = zone_status("concourse", 0.0, ["cam1"], {"cam1": "stalled"})
    assert stalled.unknown and "cam1: stalled" in stalled.reason
    assert display_level(stalled, Level.NORMAL) is Level.WARNING
    assert display_level(stalled, Level.CRITICAL) is Level.CRITICAL
    thin = zone_status("concourse", 0.55, ["cam1", "cam2"], {"cam1": "live", "cam2": "failed"})
    assert thin.unknown and "55%" in thin.reason and "cam2: failed" in thin.reason
    assert thin.down == ("cam2",)
    # One of two cameras down but the other still sees enough: known, with the down one named.
    half = zone_status("concourse", 0.9, ["cam1", "cam2"], {"cam1": "live", "cam2": "reconnecting"})
    assert half.state is ZoneState.KNOWN and half.down == ("cam2",)
    assert zone_status("z", 1.0, ["cam1"], {}).unknown  # no health report: not live
    assert zone_status("z", 0.0, [], {}).reason == "no camera sees this zone"


def test_a_stopped_camera_turns_its_fused_zone_unknown() -> None:
    grid = venue_grid((0, 0, 20, 10), 0.5)
    cal_a, side_a = _top_down(0, 0, 12, 20)
    cal_b, side_b = _top_down(8, 0, 12, 20)
    views = [CameraView.from_calibration(n, c, s, s, grid) for n, c, s in
             (("a", cal_a, side_a), ("b", cal_b, side_b))]  # fmt: skip
    fusion = VenueFusion(grid, views)
    frames = {n: CameraGround(grid, np.ones(grid.shape, np.float32)) for n in ("a", "b")}
    east = zone_mask(grid, "east", [(14, 0), (20, 0), (20, 10), (14, 10)])
    for health, expected in (({"a": "live", "b": "live"}, ZoneState.KNOWN),
                             ({"a": "live", "b": "stalled"}, ZoneState.UNKNOWN)):  # fmt: skip
        fused = fusion.fuse(frames, live={n for n, s in health.items() if s == "live"})
        measure = measure_zone(fused, east)
        status = zone_status("east", measure.covered_fraction, ["b"], health)
        assert status.state is expected


# ----- CAP --------------------------------------------------------------------------------------


def _event(kind: str = "opened") -> AlertEvent:
    rule = AlertRule(metric="density", latch_s=0, levels={"warning": 3.5})
    engine = AlertEngine({"venue/concourse": [rule]}, run="r1")
    events = engine.update("venue/concourse", 12.0, {"density": 3.9})
    assert events and events[0].kind == "opened"
    if kind == "closed":
        engine.update("venue/concourse", 13.0, {"density": 0.5})
        events = engine.update("venue/concourse", 30.0, {"density": 0.5})
        assert events and events[0].kind == "closed"
    return events[0]


def test_cap_document_parses_with_the_cap_namespace_and_required_fields() -> None:
    anchor = GeoAnchor(lat=51.5072, lon=-0.1276, bearing_deg=30)
    polygon = [(0, 0), (20, 0), (20, 10), (0, 10)]
    start = datetime(2026, 10, 14, 19, 0, tzinfo=UTC)
    text = alert_to_cap(_event(), sender="ops@arena.example", stream_start=start,
                        polygon_m=polygon, anchor=anchor, area_desc="arena concourse")  # fmt: skip
    root = ET.fromstring(text)
    assert root.tag == f"{{{CAP_NAMESPACE}}}alert"
    for field in ("identifier", "sender", "sent", "status", "msgType", "scope"):
        assert root.find(f"cap:{field}", NS) is not None and root.find(f"cap:{field}", NS).text
    assert root.find("cap:msgType", NS).text == "Alert"
    assert root.find("cap:sent", NS).text == "2026-10-14T19:00:12+00:00"
    assert not set(" ,<&") & set(root.find("cap:identifier", NS).text)
    info = root.find("cap:info", NS)
    values = {f: info.find(f"cap:{f}", NS).text for f in
              ("category", "event", "urgency", "severity", "certainty")}  # fmt: skip
    assert values == {
        "category": "Safety",
        "event": "crowd density warning",
        "urgency": "Immediate",
        "severity": "Severe",
        "certainty": "Observed",
    }
    area = info.find("cap:area", NS)
    assert area.find("cap:areaDesc", NS).text == "arena concourse"
    pairs = [tuple(map(float, p.split(","))) for p in area.find("cap:polygon", NS).text.split()]
    assert len(pairs) == 5 and pairs[0] == pairs[-1]  # closed ring, at least 4 points
    assert pairs[0] == pytest.approx((51.5072, -0.1276))
    assert all(abs(lat - 51.5072) < 0.001 and abs(lon + 0.1276) < 0.001 for lat, lon in pairs)
    # 20 m along venue x (bearing 120°: east-south-east): south and east of the anchor.
    assert pairs[1][0] < pairs[0][0] and pairs[1][1] > pairs[0][1]
    assert math.dist(pairs[0], pairs[1]) > 0


def test_cap_cancel_references_the_alert_and_no_anchor_means_no_polygon() -> None:
    closed = _event("closed")
    root = ET.fromstring(alert_to_cap(closed, sender="ops", polygon_m=[(0, 0), (1, 0), (1, 1)]))
    assert root.find("cap:msgType", NS).text == "Cancel"
    reference = root.find("cap:references", NS).text.split(",")
    assert reference[0] == "ops" and reference[1].endswith("-opened")
    area = root.find("cap:info/cap:area", NS)
    assert area.find("cap:areaDesc", NS).text == "concourse"
    assert area.find("cap:polygon", NS) is None
    assert root.find("cap:info/cap:urgency", NS).text == "Past"


# ----- config check -----------------------------------------------------------------------------


def test_venue_problems_names_uncovered_zones_gates_and_implausible_footprints() -> None:
    venue = _venue(gates=[
        {"name": "gate-a", "start_m": (5, 0), "end_m": (9, 0), "into": "concourse",
         "lines": [{"target": "cam1/gate"}, {"target": "cam9/x"}]},
        {"name": "far-gate", "start_m": (5, 20), "end_m": (9, 20), "into": "plaza"},
    ])  # fmt: skip
    footprints = {
        "cam1": box(-1, -1, 21, 9.9),  # sees the concourse and gate-a
        "huge": box(-500, -500, 500, 500),  # a million m²
        "elsewhere": box(1000, 1000, 1030, 1020),  # ground points not in venue metres
        "blind": None,  # no calibration: not on the venue ground, not a problem here
    }
    problems = venue_problems(venue, footprints, camera_lines={"cam1": ["gate"]})
    text = "\n".join(problems)
    assert all(p.startswith("- ") for p in problems)
    assert "camera 'huge': its ground footprint is 1,000,000 m²" in text
    assert "camera 'elsewhere': its footprint" in text and "venue coordinates" in text
    assert "venue zone 'concourse'" not in text
    assert "gate 'gate-a': it lies" not in text
    assert "gate 'far-gate': it lies outside every camera's view" in text
    assert "line 'cam9/x' names no camera" in text
    # An implausible footprint covers nothing: the plaza is not seen.
    assert "venue zone 'plaza': no camera footprint covers it" in text
    footprints["cam2"] = box(0, 10, 10, 20)  # half the plaza
    text = "\n".join(venue_problems(venue, footprints))
    assert "venue zone 'plaza': cameras see 50% of it, less than the 80%" in text
    assert venue_problems(venue, {"cam1": box(-1, -1, 21, 21)}, camera_lines=None) == []


# ----- the venue's analysis step ----------------------------------------------------------------


def test_venue_analyzer_fuses_measures_gates_and_fails_loud() -> None:
    venue = VenueConfig(
        name="arena",
        cell_m=0.5,
        margin_m=0,
        zones=[{"name": "east", "polygon_m": [(10, 0), (20, 0), (20, 10), (10, 10)],
                "critical_density": 4.0, "capacity": 200,
                "alerts": [{"metric": "density", "latch_s": 0, "levels": {"warning": 0.8}}]}],
        gates=[{"name": "gate-e", "start_m": (20, 2), "end_m": (20, 6), "into": "east",
                "lines": [{"target": "b/gate"}]}],
    )  # fmt: skip
    cal_a, side_a = _top_down(0, 0, 12, 20)
    cal_b, side_b = _top_down(8, 0, 12.5, 20)
    analyzer = VenueAnalyzer(venue, {"a": (cal_a, side_a, side_a), "b": (cal_b, side_b, side_b)})
    assert analyzer.covering["east"] == ["a", "b"] and analyzer.gate_cameras["gate-e"] == ["b"]
    grids = {n: CameraGround(analyzer.grid, np.ones(analyzer.grid.shape, np.float32))
             for n in ("a", "b")}  # fmt: skip
    # 30 people/m/min in over a 4 m line = 120 /min in, 20 /min out: +100 /min.
    lines = {"b/gate": _line("b/gate", 30.0, 5.0, length_m=4.0)}
    health = {"a": "live", "b": "live"}
    first = analyzer.update(0.0, grids, lines, health)
    second = analyzer.update(6.0, grids, lines, health)
    (zone,) = second.zones
    assert zone.status.state is ZoneState.KNOWN and zone.covered_fraction == pytest.approx(1.0)
    assert zone.metrics.target == "arena/east" and zone.metrics.count == pytest.approx(
        100, rel=1e-3
    )
    assert zone.metrics.density == pytest.approx(1.0, rel=1e-3)
    assert zone.metrics.occupancy == pytest.approx(0.5, rel=1e-3)
    # Mass balance: (4.0 - 1.0) * 100 m² / (120 - 20) = 3 minutes.
    assert (zone.inflow_per_min, zone.outflow_per_min) == pytest.approx((120.0, 20.0))
    assert zone.minutes_to_critical == pytest.approx(3.0, rel=1e-3)
    assert zone.as_row()["state"] == "known" and zone.as_row()["minutes_to_critical"] == 3.0
    (gate,) = second.gates
    assert gate.target == "arena/gate-e" and gate.flow_in == pytest.approx(30.0)
    assert gate.crossed_in == pytest.approx(12.0)  # 120 /min for 6 s
    assert [e.kind for e in first.events] == ["opened"] and zone.metrics.level is Level.WARNING
    # Camera b stalls: the left camera sees only x < 12 of the zone (20 %): unknown, level at
    # least warning, no values fed to the rules, no flow through its gate.
    third = analyzer.update(12.0, grids, lines, {"a": "live", "b": "stalled"})
    (zone,) = third.zones
    assert zone.status.unknown and "b: stalled" in zone.status.reason
    assert zone.covered_fraction == pytest.approx(0.2, abs=0.01)
    assert set(zone.alert_inputs().values()) == {None}
    assert zone.metrics.level >= Level.WARNING and zone.minutes_to_critical is None
    assert math.isnan(third.gates[0].flow_in) and third.flows["gate-e"].lines == ()
    assert not third.events  # a missing sample neither raises nor clears
    assert [e.kind for e in analyzer.finish(13.0)] == ["closed"]
