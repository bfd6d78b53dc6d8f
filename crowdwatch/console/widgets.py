"""Small Streamlit pieces the pages share: level badges, camera health, pictures, time ranges."""

from __future__ import annotations

import html
import math
import time
from collections.abc import Mapping

import cv2
import numpy as np
import streamlit as st

from crowdwatch.alerts import AlertRule
from crowdwatch.config.schema import CameraConfig
from crowdwatch.console.pictures import Folders, Picture, picture_at
from crowdwatch.measures import DensityColourScale
from crowdwatch.store import CameraHealth, SqlStore

BADGE_COLOURS: dict[str, str] = {
    "normal": "green",
    "advisory": "yellow",
    "warning": "orange",
    "critical": "red",
}
HEALTH_COLOURS: dict[str, str] = {
    "live": "green",
    "starting": "blue",
    "reconnecting": "orange",
    "stalled": "orange",
    "stopped": "gray",
    "failed": "red",
}
# Choices of how far back the trend charts look, in seconds (None: everything recorded).
WINDOWS: dict[str, float | None] = {
    "last 5 minutes": 300.0,
    "last 15 minutes": 900.0,
    "last hour": 3600.0,
    "last 4 hours": 14400.0,
    "everything recorded": None,
}


def camera_picker(cameras: list[str], key: str) -> str:
    """A camera select box that starts on ``?camera=NAME`` when the link names one."""
    wanted = st.query_params.get("camera")
    index = cameras.index(wanted) if wanted in cameras else 0
    return st.selectbox("Camera", cameras, index=index, key=key)


def level_badge(level: str) -> None:
    """A coloured badge naming an alert level."""
    st.badge(level.upper(), color=BADGE_COLOURS.get(level, "gray"))


def level_markdown(level: str) -> str:
    """Markdown for a level in its colour (bold when it is an alert)."""
    colour = BADGE_COLOURS.get(level, "gray")
    return f":{colour}[{level}]" if level == "normal" else f":{colour}[**{level.upper()}**]"


def health_line(health: CameraHealth | None, now: float | None = None) -> str:
    """One line about a camera's state: state, analysis rate, age of its last frame."""
    if health is None:
        return "no health report"
    now = time.time() if now is None else now
    parts = [health.state, f"{health.analysis_fps:.1f} fps"]
    if health.last_frame_time is not None:
        parts.append(f"last frame {_age(now - health.last_frame_time)} ago")
    if health.reconnects:
        parts.append(f"{health.reconnects} reconnects")
    if health.error:
        parts.append(health.error)
    return " · ".join(parts)


def health_badge(health: CameraHealth | None) -> None:
    """A coloured badge with the camera's state."""
    state = health.state if health else "unknown"
    st.badge(state, color=HEALTH_COLOURS.get(state, "gray"))


def show_picture(image: np.ndarray | None, caption: str = "", max_width: int = 960) -> None:
    """A BGR picture, shrunk to ``max_width`` and sent as JPEG to keep refreshes light."""
    if image is None:
        st.info("No picture recorded for this camera yet.")
        return
    st.image(
        _shrunk(image, max_width), caption=caption or None, channels="BGR", output_format="JPEG"
    )


def latest_picture(
    store: SqlStore,
    camera: str,
    folders: Folders,
    config: CameraConfig | None,
    levels: Mapping[str, str] | None = None,
) -> Picture | None:
    """The camera's latest picture (see :func:`~crowdwatch.console.pictures.picture_at`),
    zones outlined in ``levels`` (the one truth the other panels show), cached for two seconds
    so that several operators' walls decode each recording once."""
    key = config.model_dump_json() if config is not None else ""
    level_key = tuple(sorted((levels or {}).items()))
    return _cached_picture(store, folders, config, store.url, camera, str(folders), key, level_key)


@st.cache_data(ttl=2, max_entries=64, show_spinner=False)
def _cached_picture(
    _store: SqlStore,
    _folders: Folders,
    _config: CameraConfig | None,
    store_url: str,
    camera: str,
    folders_key: str,
    config_key: str,
    level_key: tuple[tuple[str, str], ...],
) -> Picture | None:
    levels = dict(level_key) if level_key else None
    return picture_at(_store, camera, _folders, config=_config, levels=levels)


def density_legend(scale: DensityColourScale | None = None) -> None:
    """The people/m² colour bands (the bird's-eye view's and calibrated heat maps' colours)."""
    scale = scale or DensityColourScale()
    chips = "".join(
        f"<span style='display:inline-block;margin-right:0.8em'>"
        f"<span style='display:inline-block;width:0.9em;height:0.9em;border-radius:2px;"
        f"vertical-align:middle;background:#{r:02x}{g:02x}{b:02x}'></span> "
        f"{html.escape(name)} {html.escape(limits)}</span>"
        for name, limits, (b, g, r) in scale.legend()
    )
    st.markdown(
        f"<div class='cw-density-legend' style='font-size:0.85em'><b>people/m²:</b> {chips}</div>",
        unsafe_allow_html=True,
    )


def window_start(label: str, latest: float | None) -> float | None:
    """The start time of a :data:`WINDOWS` choice, counted back from the latest sample."""
    span = WINDOWS[label]
    if span is None or latest is None:
        return None
    return latest - span


def _shrunk(image: np.ndarray, max_width: int) -> np.ndarray:
    height, width = image.shape[:2]
    if width <= max_width:
        return image
    size = (max_width, int(round(height * max_width / width)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _age(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


#: The unit of each metric alert rules watch, for control labels.
METRIC_UNITS: dict[str, str] = {
    "count": "people",
    "density": "people/m²",
    "occupancy": "share of capacity, 1 = full",
    "flow_rate": "people per metre per minute",
    "flow_in": "people per metre per minute",
    "flow_out": "people per metre per minute",
    "pressure": "1/s²",
    "mean_speed": "m/s",
    "rise_rate": "people/m² per minute",
    "minutes_to_limit": "minutes",
}


def threshold_sliders(
    rule: AlertRule, key: str, disabled: bool = False
) -> tuple[AlertRule, dict[str, float]]:
    """A slider per level of ``rule`` (labelled with the metric's unit); returns the rule with
    the thresholds the sliders show."""
    levels = rule.resolved_levels()
    top = max(level.threshold for level in levels)
    high = _nice_ceiling(top * 2 if top > 0 else 1.0)
    step = _step(high)
    unit = METRIC_UNITS.get(rule.metric, rule.metric)
    st.caption(f"{rule.label} ({rule.metric} in {unit}, {'rising' if rule.rising else 'falling'})")
    columns = st.columns(len(levels))
    thresholds = {}
    for column, level in zip(columns, levels, strict=True):
        thresholds[level.level.label] = column.slider(
            f"{level.level.label} ({unit})", min_value=0.0, max_value=high,
            value=float(level.threshold), step=step, key=f"{key}-{level.level.label}",
            disabled=disabled,
        )  # fmt: skip
    return rule, thresholds


def _nice_ceiling(value: float) -> float:
    magnitude = 10 ** math.floor(math.log10(value))
    for factor in (1, 2, 5, 10):
        if value <= factor * magnitude:
            return float(factor * magnitude)
    return float(10 * magnitude)


def _step(high: float) -> float:
    return float(10 ** math.floor(math.log10(high / 100))) if high > 0 else 0.01
