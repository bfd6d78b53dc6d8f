"""Camera: one camera large, its zones' trends (count, density, flow...) and the bird's-eye
density view."""

from __future__ import annotations

import time

import cv2
import numpy as np
import streamlit as st

from crowdwatch.calibration import CalibrationError
from crowdwatch.calibration.settings import build_calibration
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
from crowdwatch.console.pictures import Picture
from crowdwatch.console.widgets import (
    WINDOWS,
    camera_picker,
    health_line,
    latest_picture,
    level_markdown,
    show_picture,
    window_start,
)

REFRESH_S = 3.0
_HIDDEN_METRICS = {"area_m2"}


def render(ctx: ConsoleContext) -> None:
    """The Camera page."""
    st.title("Camera")
    if not ctx.cameras:
        st.info("No camera has reported yet.")
        return
    camera = camera_picker(ctx.cameras, key="camera-choice")
    window = st.selectbox("Trends over", list(WINDOWS), index=2, key="camera-window")
    _camera_view(ctx, camera, window)


@st.fragment(run_every=REFRESH_S)
def _camera_view(ctx: ConsoleContext, camera: str, window: str) -> None:
    latest = [s for s in ctx.store.latest_metrics(camera) if s.kind == "zone"]
    health = next(iter(ctx.store.health(camera)), None)
    config = ctx.camera_config(camera)
    picture = latest_picture(ctx.store, camera, ctx.folders, config)
    left, right = st.columns([3, 2])
    with left:
        caption = f"{camera}: {picture.caption}, {_clock(picture.time)} UTC" if picture else ""
        show_picture(picture.image if picture else None, caption, max_width=1280)
        st.caption(health_line(health))
    with right:
        for sample in latest:
            density = sample.value("density")
            count = sample.value("count") or 0.0
            st.markdown(
                f"**{sample.zone}** {level_markdown(sample.level)}: {count:.1f} people"
                + ("" if density is None else f", {density:.2f} people/m²")
            )
        _birds_eye(config, picture, latest)
    newest = max((s.time for s in latest), default=None)
    _trends(ctx, camera, window_start(window, newest))


def _trends(ctx: ConsoleContext, camera: str, start: float | None) -> None:
    table = samples_table(ctx.store.metrics(camera, start=start))
    if table.empty:
        st.info("No metrics recorded in this window.")
        return
    newest = table["time"].max().timestamp()  # open alerts run to the latest sample
    alerts = alerts_table(ctx.store.alerts(camera=camera, start=start), now=newest)
    metrics = [m for m in metric_columns(table) if m not in _HIDDEN_METRICS]
    for metric, column in zip(
        metrics, st.columns(min(len(metrics), 2)) * len(metrics), strict=False
    ):
        with column:
            st.markdown(f"**{METRIC_TITLES.get(metric, metric).capitalize()}**")
            chart = trend_chart(trend_table(table, metric), metric, alerts)
            st.altair_chart(chart, width="stretch")


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
        view = birds_eye_view(_full_size(picture.image, config), calibration, zones)
    except CalibrationError as problem:
        st.caption(f"Bird's-eye view unavailable: {problem}")
        return
    show_picture(view, "bird's-eye view (ground, north up), zones by people/m²", max_width=600)


def _full_size(image: np.ndarray, config: CameraConfig) -> np.ndarray:
    """The picture at the camera's own frame size (recordings may be scaled down), so that
    the calibration's pixel coordinates apply."""
    if config.frame_size is None or tuple(config.frame_size) == (image.shape[1], image.shape[0]):
        return image
    return cv2.resize(image, tuple(config.frame_size), interpolation=cv2.INTER_LINEAR)


def _clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(epoch))
