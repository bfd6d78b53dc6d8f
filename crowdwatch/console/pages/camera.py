"""Camera: one camera large, its zones' trends (count, density, flow...) and the bird's-eye
density view."""

from __future__ import annotations

import numpy as np
import streamlit as st

from crowdwatch.calibration import CalibrationError
from crowdwatch.config.schema import CameraConfig
from crowdwatch.console.birdseye import ZoneDensity, birds_eye_view
from crowdwatch.console.charts import (
    METRIC_TITLES,
    alerts_table,
    metric_columns,
    samples_table,
    trend_chart,
    trend_table,
)
from crowdwatch.console.context import ConsoleContext
from crowdwatch.console.widgets import (
    WINDOWS,
    cached_latest_picture,
    health_line,
    level_markdown,
    show_picture,
    window_start,
)
from crowdwatch.pipeline.camera import build_calibration

REFRESH_S = 3.0
_HIDDEN_METRICS = {"area_m2"}


def render(ctx: ConsoleContext) -> None:
    """The Camera page."""
    st.title("Camera")
    if not ctx.cameras:
        st.info("No camera has reported yet.")
        return
    wanted = st.query_params.get("camera")
    index = ctx.cameras.index(wanted) if wanted in ctx.cameras else 0
    camera = st.selectbox("Camera", ctx.cameras, index=index, key="camera-choice")
    window = st.selectbox("Trends over", list(WINDOWS), index=2, key="camera-window")
    _camera_view(ctx, camera, window)


@st.fragment(run_every=REFRESH_S)
def _camera_view(ctx: ConsoleContext, camera: str, window: str) -> None:
    latest = [s for s in ctx.store.latest_metrics(camera) if s.kind == "zone"]
    health = next(iter(ctx.store.health(camera)), None)
    picture = cached_latest_picture(ctx.store, ctx.store.url, camera, ctx.root)
    left, right = st.columns([3, 2])
    with left:
        show_picture(picture[0] if picture else None, camera, max_width=1280)
        st.caption(health_line(health))
    with right:
        for sample in latest:
            density = sample.value("density")
            count = sample.value("count") or 0.0
            st.markdown(
                f"**{sample.zone}** {level_markdown(sample.level)}: {count:.1f} people"
                + ("" if density is None else f", {density:.2f} people/m²")
            )
        _birds_eye(ctx, camera, picture[0] if picture else None, latest)
    newest = max((s.time for s in latest), default=None)
    _trends(ctx, camera, window_start(window, newest))


def _trends(ctx: ConsoleContext, camera: str, start: float | None) -> None:
    table = samples_table(ctx.store.metrics(camera, start=start))
    if table.empty:
        st.info("No metrics recorded in this window.")
        return
    alerts = alerts_table(ctx.store.alerts(camera=camera, start=start))
    metrics = [m for m in metric_columns(table) if m not in _HIDDEN_METRICS]
    for metric, column in zip(
        metrics, st.columns(min(len(metrics), 2)) * len(metrics), strict=False
    ):
        with column:
            st.markdown(f"**{METRIC_TITLES.get(metric, metric).capitalize()}**")
            chart = trend_chart(trend_table(table, metric), metric, alerts)
            st.altair_chart(chart, width="stretch")


def _birds_eye(ctx: ConsoleContext, camera: str, picture: np.ndarray | None, latest) -> None:
    config = _camera_config(ctx, camera)
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
        view = birds_eye_view(picture, calibration, zones)
    except CalibrationError as problem:
        st.caption(f"Bird's-eye view unavailable: {problem}")
        return
    show_picture(view, "bird's-eye view (ground, north up), zones by people/m²", max_width=600)


def _camera_config(ctx: ConsoleContext, camera: str) -> CameraConfig | None:
    if ctx.config is None:
        return None
    return next((c for c in ctx.config.cameras if c.name == camera), None)
