"""The console's plain helpers: password hashing, chart shaping, what-if replay, reports,
typed points, store paths and the bird's-eye view. Known answers, real geometry."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crowdwatch.alerts import AlertRule
from crowdwatch.calibration import GroundCalibration
from crowdwatch.config import load_config
from crowdwatch.console.auth import (
    OPEN_ACCESS,
    AccessDenied,
    ConsoleUser,
    hash_password,
    require_change_right,
    verify_password,
)
from crowdwatch.console.birdseye import ZoneDensity, birds_eye_view
from crowdwatch.console.charts import (
    alerts_table,
    level_hex,
    order_for_attention,
    replayed_table,
    samples_table,
    trend_table,
)
from crowdwatch.console.data import replace_camera, store_target
from crowdwatch.console.geometry import click_to_image, parse_points
from crowdwatch.console.report import ReviewReport, alerts_csv, render_report_html, samples_csv
from crowdwatch.console.whatif import camera_rules, replay_samples, with_thresholds
from crowdwatch.errors import ConfigError
from crowdwatch.measures.colour_scale import DensityColourScale
from crowdwatch.store import MetricSample, StoredAlert

REPO = Path(__file__).resolve().parents[1]
T0 = 1_750_000_000.0


def _stored(alert_id: str, level: str, start: float, closed: float | None, by: str | None = None):
    return StoredAlert(
        id=alert_id, camera="gate", zone="north", rule="count", metric="count", level=level,
        value=9.0, peak=11.0, start=start, opened=start, end=closed, closed=closed,
        acknowledged_by=by, acknowledged_at=None, acknowledged_note=None, snapshot=None,
        updated=start,
    )  # fmt: skip


def test_password_hashes_are_salted_and_verify_only_the_password() -> None:
    first, second = hash_password("gate-7", cost=2**10), hash_password("gate-7", cost=2**10)
    assert first != second and "gate-7" not in first
    assert verify_password("gate-7", first) and verify_password("gate-7", second)
    assert not verify_password("gate-8", first)
    with pytest.raises(ValueError, match="scrypt"):
        verify_password("gate-7", "plain-text")
    with pytest.raises(ValueError, match="empty"):
        hash_password("")


def test_only_operators_may_change_things() -> None:
    require_change_right(ConsoleUser("maria", "operator"), "change thresholds")
    require_change_right(OPEN_ACCESS, "acknowledge alerts")
    with pytest.raises(AccessDenied, match="sam \\(viewer\\) may not change thresholds"):
        require_change_right(ConsoleUser("sam", "viewer"), "change thresholds")


def test_trend_table_averages_long_series_into_buckets() -> None:
    samples = [MetricSample("gate", "north", T0 + s, {"count": float(s % 10)}) for s in range(3000)]
    trend = trend_table(samples_table(samples), "count", max_points=300)
    assert len(trend) == 300
    assert trend["value"].mean() == pytest.approx(4.5, abs=0.01)  # mean of 0..9 kept
    with pytest.raises(KeyError, match="density"):
        trend_table(samples_table(samples), "density")


def test_open_unacknowledged_severe_alerts_come_first() -> None:
    alerts = [
        _stored("old-closed", "critical", T0, T0 + 60),
        _stored("open-advisory", "advisory", T0 + 10, None),
        _stored("open-critical-acked", "critical", T0 + 20, None, by="maria"),
        _stored("open-critical", "critical", T0 + 5, None),
    ]
    order = order_for_attention(alerts_table(alerts, now=T0 + 100))["id"].tolist()
    assert order == ["open-critical", "open-advisory", "open-critical-acked", "old-closed"]


def test_level_colours_match_the_annotated_frames() -> None:
    assert level_hex("critical") == "#e60000" and level_hex("normal") == "#50c850"


def test_with_thresholds_moves_levels_and_recomputes_a_stale_clear() -> None:
    rule = AlertRule(metric="density", levels={"warning": {"threshold": 3.5, "clear": 3.2}})
    moved = with_thresholds(rule, {"warning": 2.0})
    level = moved.resolved_levels()[0]
    assert level.threshold == 2.0 and level.clear == pytest.approx(1.8)  # 3.2 was above 2.0
    with pytest.raises(KeyError, match="critical"):
        with_thresholds(rule, {"critical": 5.0})
    ordered = AlertRule(metric="count", levels={"advisory": 5, "warning": 7})
    with pytest.raises(ValueError, match="warning threshold 4 must be above advisory"):
        with_thresholds(ordered, {"warning": 4})


def test_replay_with_a_lower_threshold_fires_earlier_and_longer() -> None:
    counts = [2, 4, 6, 8, 8, 6, 4, 2, 2, 2]
    samples = [MetricSample("gate", "north", T0 + t, {"count": c}) for t, c in enumerate(counts)]
    rule = AlertRule(metric="count", latch_s=0, clear_latch_s=0, levels={"warning": 7})
    strict = replay_samples({"gate/north": [rule]}, samples)
    loose = replay_samples({"gate/north": [with_thresholds(rule, {"warning": 4})]}, samples)
    assert [(r.start_s - T0, r.end_s - T0) for r in strict] == [(3.0, 5.0)]
    assert [(r.start_s - T0, r.end_s - T0) for r in loose] == [(1.0, 7.0)]
    table = replayed_table(loose)
    assert table["start"][0] == pd.Timestamp(T0 + 1, unit="s", tz="UTC")


def test_camera_rules_follow_the_config_and_the_density_defaults() -> None:
    camera = load_config(REPO / "sample_videos" / "pets2009_s2l1.yaml").cameras[0]
    samples = [MetricSample("plaza", "crossing", T0, {"count": 1.0, "area_m2": 40.0})]
    rules = camera_rules(camera, samples)
    assert [r.metric for r in rules["plaza/road"]] == ["count", "density"]
    assert [r.metric for r in rules["plaza/crossing"]] == ["count"]  # its own rules win


def test_report_is_self_contained_and_lists_the_alerts() -> None:
    samples = samples_table(
        [MetricSample("gate", z, T0 + t, {"count": float(t), "density": t / 10}) for t in range(60)
         for z in ("north", "south")]
    )  # fmt: skip
    alerts = alerts_table([_stored("a1", "warning", T0 + 30, T0 + 50, by="maria")])
    page = render_report_html(
        ReviewReport("Gate <review>", "gate", T0, T0 + 60, samples, alerts, generated_by="maria")
    )
    assert page.count("<svg") == 2  # count and density charts
    assert "Gate &lt;review&gt;" in page and "<script" not in page
    assert not re.search(r"(src|href)=[\"']https?:", page)  # nothing fetched when opened
    assert "maria" in page and "warning" in page
    assert samples_csv(samples).splitlines()[0] == "time,camera,zone,kind,level,count,density"
    assert "2025-06-15T15:07:10+00:00" in alerts_csv(alerts)


def test_typed_points_parse_and_name_the_bad_line() -> None:
    assert parse_points("1 2\n\n3,4", 2) == [(1.0, 2.0), (3.0, 4.0)]
    with pytest.raises(ValueError, match="line 2"):
        parse_points("1, 2\n3", 2)
    with pytest.raises(ValueError, match="not a number"):
        parse_points("1, x", 2)
    assert click_to_image({"x": 400, "y": 100, "width": 800, "height": 600}, (768, 576)) == (
        384.0,
        96.0,
    )


def test_store_target_and_camera_replacement() -> None:
    assert store_target(["--store=a.db"], {"CROWDWATCH_STORE": "b.db"}) == "a.db"
    assert store_target([], {}) == "out/demo/crowdwatch.db"
    config = load_config(REPO / "sample_videos" / "pets2009_s2l1.yaml")
    emptied = replace_camera(config, config.cameras[0].model_copy(update={"zones": []}))
    assert emptied.cameras[0].zones == [] and config.cameras[0].zones
    with pytest.raises(ConfigError, match="no camera named 'gate'"):
        replace_camera(config, config.cameras[0].model_copy(update={"name": "gate"}))


def test_birds_eye_view_colours_a_zone_by_its_density_band() -> None:
    corners = [(100, 400), (500, 400), (420, 200), (180, 200)]
    calibration = GroundCalibration.from_rectangle(corners, width_m=4.0, depth_m=6.0)
    view = birds_eye_view(
        np.zeros((480, 640, 3), np.uint8),
        calibration,
        [ZoneDensity("gate", np.array(corners, np.float64), 4.5)],
        max_side_px=200,
    )
    # 6 m + 2 m margin over 200 px: 4 m x 6 m zone in the middle; a black picture leaves
    # 45 % of the band colour there.
    expected = np.array(DensityColourScale().colour_of(4.5)) * 0.45
    centre = view[view.shape[0] // 2, view.shape[1] // 2].astype(float)
    assert np.allclose(centre, expected, atol=2)
    assert view.shape[0] == 200 and math.isclose(view.shape[1], 150, abs_tol=1)
