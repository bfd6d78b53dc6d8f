"""Live wall: every camera's latest picture, zone levels, counts and people per m², health.

The wall is a fragment that reruns every two seconds on its own, so the page does not flash and
the rest of the app (sidebar, other widgets) stays put.
"""

from __future__ import annotations

import time
from collections import defaultdict

import streamlit as st

from crowdwatch.console.charts import worst_level
from crowdwatch.console.context import ConsoleContext
from crowdwatch.console.widgets import (
    health_badge,
    health_line,
    latest_picture,
    level_badge,
    level_markdown,
    show_picture,
)
from crowdwatch.store import MetricSample, StoredAlert

REFRESH_S = 2.0


def render(ctx: ConsoleContext) -> None:
    """The Live wall page."""
    st.title("Live wall")
    if not ctx.cameras:
        st.info(
            "No camera has reported yet. Start the engine (`crowdwatch analyze --store ...`) "
            "or fill a demo store with `crowdwatch demo`."
        )
        return
    per_row = st.sidebar.select_slider("Cameras per row", options=[1, 2, 3, 4], value=3)
    _wall(ctx, min(per_row, len(ctx.cameras)))


@st.fragment(run_every=REFRESH_S)
def _wall(ctx: ConsoleContext, per_row: int) -> None:
    samples = ctx.store.latest_metrics()
    active = ctx.store.active_alerts()
    health = {report.camera: report for report in ctx.store.health()}
    _alert_banner(active)
    by_camera: dict[str, list[MetricSample]] = defaultdict(list)
    for sample in samples:
        by_camera[sample.camera].append(sample)
    for start in range(0, len(ctx.cameras), per_row):
        columns = st.columns(per_row)
        for column, camera in zip(columns, ctx.cameras[start : start + per_row], strict=False):
            with column, st.container(border=True):
                _camera_tile(ctx, camera, by_camera.get(camera, []), health.get(camera), active)


def _alert_banner(active: list[StoredAlert]) -> None:
    if not active:
        st.success("No active alerts.")
        return
    waiting = [alert for alert in active if not alert.acknowledged]
    worst = worst_level(alert.level for alert in active)
    text = (
        f"**{len(active)} active alert(s)**, worst **{worst.upper()}**; "
        f"{len(waiting)} not acknowledged. See the Alerts page."
    )
    (st.error if worst in ("warning", "critical") else st.warning)(text)


def _camera_tile(
    ctx: ConsoleContext,
    camera: str,
    samples: list[MetricSample],
    health,
    active: list[StoredAlert],
) -> None:
    levels = [alert.level for alert in active if alert.camera == camera]
    head, badges = st.columns([3, 2])
    head.subheader(camera)
    with badges:
        level_badge(worst_level(levels))
        health_badge(health)
    picture = latest_picture(ctx.store, camera, ctx.folders, ctx.camera_config(camera))
    show_picture(picture.image if picture else None, max_width=640)
    st.caption(health_line(health))
    zones = [sample for sample in samples if sample.kind == "zone"]
    if zones:
        st.markdown(_zone_table(zones))
        newest = max(sample.time for sample in zones)
        st.caption(f"as of {time.strftime('%H:%M:%S', time.gmtime(newest))} UTC")


def _zone_table(samples: list[MetricSample]) -> str:
    rows = ["| zone | people | people/m² | level |", "|---|---:|---:|---|"]
    for sample in samples:
        count = sample.value("count")
        density = sample.value("density")
        rows.append(
            f"| {sample.zone} | {'' if count is None else f'{count:.1f}'} | "
            f"{'' if density is None else f'{density:.2f}'} | {level_markdown(sample.level)} |"
        )
    return "\n".join(rows)
