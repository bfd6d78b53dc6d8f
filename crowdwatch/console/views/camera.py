"""Camera: one camera large, its zones' trends (count, density, flow...) and the bird's-eye
density view."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import streamlit as st

from crowdwatch.calibration import CalibrationError
from crowdwatch.calibration.settings import build_calibration
from crowdwatch.config.schema import CameraConfig
from crowdwatch.console.alertbar import situation
from crowdwatch.console.birdseye import ZoneDensity, birds_eye_view
from crowdwatch.console.charts import (
    METRIC_TITLES,
    alerts_table,
    chart_values,
    metric_columns,
    samples_table,
    trend_chart,
)
from crowdwatch.console.context import ConsoleContext
from crowdwatch.console.pictures import Picture, at_frame_size
from crowdwatch.console.widgets import (
    WINDOWS,
    camera_picker,
    density_legend,
    health_line,
    latest_picture,
    level_badge,
    level_markdown,
    show_picture,
    window_start,
)

REFRESH_S = 3.0
TRENDS_REFRESH_S = 15.0


def render(ctx: ConsoleContext) -> None:
    """The Camera page."""
    st.title("Camera")
    if not ctx.cameras:
        st.info("No camera has reported yet.")
        return
    camera = camera_picker(ctx.cameras, key="camera-choice")
    window = st.selectbox("Trends over", list(WINDOWS), index=2, key="camera-window")
    _camera_view(ctx, camera)
    newest = max((s.time for s in ctx.store.latest_metrics(camera)), default=None)
    _live_trends(ctx, camera, window, newest)


@st.fragment(run_every=TRENDS_REFRESH_S)
def _live_trends(ctx: ConsoleContext, camera: str, window: str, newest: float | None) -> None:
    # Charts refresh less often than the picture: redrawing them every few seconds kept the
    # page greyed a third of the time.
    newest = max((s.time for s in ctx.store.latest_metrics(camera)), default=newest)
    _trends(ctx, camera, window, newest)


@st.fragment(run_every=REFRESH_S)
def _camera_view(ctx: ConsoleContext, camera: str) -> None:
    now = situation(ctx.store)
    latest = [s for s in now.samples if s.camera == camera and s.kind == "zone"]
    health = next(iter(ctx.store.health(camera)), None)
    config = ctx.camera_config(camera)
    levels = {zone: level for (name, zone), level in now.targets.items() if name == camera}
    picture = latest_picture(ctx.store, camera, ctx.folders, config, levels)
    left, right = st.columns([3, 2])
    with left:
        caption = f"{camera}: {picture.caption}, {_clock(picture.time)} UTC" if picture else ""
        show_picture(picture.image if picture else None, caption, max_width=1280)
        st.caption(health_line(health))
    with right:
        level_badge(now.camera_level(camera))
        for sample in latest:
            density = sample.value("density")
            count = sample.value("count") or 0.0
            level = now.zone_level(camera, sample.zone)
            st.markdown(
                f"**{sample.zone}** {level_markdown(level)}: {count:.1f} people"
                + ("" if density is None else f", {density:.2f} people/m²")
            )
        _birds_eye(config, picture, latest)
        density_legend()


#: The four charts an operator reads, in order: (metric, kind of target).
MAIN_CHARTS: tuple[tuple[str, str], ...] = (
    ("count", "zone"),
    ("density", "zone"),
    ("occupancy", "zone"),
    ("flow_rate", "line"),
)
#: Never charted: constants of the geometry.
_NOT_CHARTED = {"area_m2", "length_m"}


def _trends(ctx: ConsoleContext, camera: str, window: str, newest: float | None) -> None:
    """The four charts (units, thresholds drawn), the rest only when asked for."""
    start = window_start(window, newest)
    table = samples_table(ctx.store.metrics(camera, start=start))
    if table.empty:
        st.info("No metrics recorded in this window.")
        return
    end = table["time"].max().timestamp()  # open alerts run to the latest sample
    alerts = alerts_table(ctx.store.alerts(camera=camera, start=start), now=end)
    config = ctx.camera_config(camera)
    thresholds = rule_thresholds(config) if config is not None else {}
    columns = st.columns(2)
    shown = 0
    for metric, kind in MAIN_CHARTS:
        trend = chart_values(table, metric, kind)
        if trend.empty:
            continue
        with columns[shown % 2]:
            st.markdown(f"**{METRIC_TITLES[metric].capitalize()}**")
            drawn = thresholds.get((kind, metric), [])
            if metric == "occupancy":
                drawn = [("critical", 100.0)]
            chart = trend_chart(trend, metric, alerts, thresholds=drawn)
            st.altair_chart(chart, width="stretch")
        shown += 1
    with st.expander("More measures (speed, pressure, forecasts, line totals)"):
        if st.toggle("Show them", key=f"camera-more-{camera}"):
            _more_charts(table, alerts)


def _more_charts(table: pd.DataFrame, alerts: pd.DataFrame) -> None:
    main = {metric for metric, _ in MAIN_CHARTS}
    others = [m for m in metric_columns(table) if m not in main and m not in _NOT_CHARTED]
    columns = st.columns(2)
    shown = 0
    for metric in others:
        trend = chart_values(table, metric, None)
        if trend.empty or (metric == "stalled" and not (trend["value"] > 0).any()):
            continue  # a flag that never rose says nothing a chart would add
        with columns[shown % 2]:
            st.markdown(f"**{METRIC_TITLES.get(metric, metric.replace('_', ' ')).capitalize()}**")
            st.altair_chart(trend_chart(trend, metric, alerts, height=180), width="stretch")
        shown += 1
    if not shown:
        st.caption("No other measures recorded.")


def rule_thresholds(config: CameraConfig) -> dict[tuple[str, str], list[tuple[str, float]]]:
    """``(kind, metric) -> [(level, threshold)]`` of the camera's configured rules (zones and
    counting lines), to draw on the charts."""
    found: dict[tuple[str, str], list[tuple[str, float]]] = {}
    targets = [("zone", zone.alerts) for zone in config.zones]
    targets += [("line", line.alerts) for line in config.lines]
    for kind, rules in targets:
        for rule in rules:
            for level in rule.resolved_levels():
                found.setdefault((kind, rule.metric), []).append(
                    (level.level.label, float(level.threshold))
                )
    return found


def _birds_eye(config: CameraConfig | None, picture: Picture | None, latest) -> None:
    if config is None or config.calibration is None or picture is None or not config.zones:
        st.caption("Bird's-eye view: needs a calibrated camera with zones and a picture.")
        return
    densities = {sample.zone: sample.value("density") for sample in latest}
    zones = [
        ZoneDensity(zone.name, np.asarray(zone.polygon, np.float64), densities.get(zone.name))
        for zone in config.zones
    ]
    try:
        calibration = build_calibration(config.calibration)
        view = birds_eye_view(at_frame_size(picture.image, config), calibration, zones)
    except CalibrationError as problem:
        st.caption(f"Bird's-eye view unavailable: {problem}")
        return
    show_picture(view, "bird's-eye view (ground, north up), zones by people/m²", max_width=600)


def _clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(epoch))
