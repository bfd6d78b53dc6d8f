"""Live wall: every camera's latest picture, zone levels, counts and people per m², health.

The wall is a fragment that reruns every two seconds on its own, so the page does not flash and
the rest of the app (sidebar, other widgets) stays put.
"""

from __future__ import annotations

import time
from collections import defaultdict

import streamlit as st

from crowdwatch.console.alertbar import acknowledge_form, situation
from crowdwatch.console.context import ConsoleContext
from crowdwatch.console.levels import Situation
from crowdwatch.console.widgets import (
    density_legend,
    health_badge,
    health_line,
    latest_picture,
    level_badge,
    level_markdown,
    show_picture,
)
from crowdwatch.store import MetricSample

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
    density_legend()
    _wall(ctx, min(per_row, len(ctx.cameras)))


@st.fragment(run_every=REFRESH_S)
def _wall(ctx: ConsoleContext, per_row: int) -> None:
    now = situation(ctx.store)  # one truth for badge, outline, table and the alert bar
    health = {report.camera: report for report in ctx.store.health()}
    by_camera: dict[str, list[MetricSample]] = defaultdict(list)
    for sample in now.samples:
        by_camera[sample.camera].append(sample)
    for start in range(0, len(ctx.cameras), per_row):
        columns = st.columns(per_row)
        for column, camera in zip(columns, ctx.cameras[start : start + per_row], strict=False):
            with column, st.container(border=True):
                _camera_tile(ctx, camera, by_camera.get(camera, []), health.get(camera), now)


def _camera_tile(
    ctx: ConsoleContext,
    camera: str,
    samples: list[MetricSample],
    health,
    now: Situation,
) -> None:
    head, badges = st.columns([3, 2])
    head.subheader(camera)
    with badges:
        level_badge(now.camera_level(camera))
        health_badge(health)
    levels = {zone: level for (name, zone), level in now.targets.items() if name == camera}
    picture = latest_picture(ctx.store, camera, ctx.folders, ctx.camera_config(camera), levels)
    show_picture(picture.image if picture else None, max_width=640)
    st.caption(health_line(health))
    zones = [sample for sample in samples if sample.kind == "zone"]
    if zones:
        st.markdown(zone_table(zones, now))
        newest = max(sample.time for sample in zones)
        st.caption(f"as of {time.strftime('%H:%M:%S', time.gmtime(newest))} UTC")
    # Acknowledge from the wall: the camera's waiting alerts, oldest first, in a stable order.
    waiting = [a for a in now.alerts_of(camera) if not a.acknowledged]
    for alert in waiting if ctx.user.can_change else []:
        with st.popover(f"Acknowledge {alert.zone} {alert.level.upper()}", width="stretch"):
            acknowledge_form(ctx, alert, prefix="wall-")


def zone_table(samples: list[MetricSample], now: Situation) -> str:
    """Markdown table of a camera's zones: people, people/m² and the zone's one level."""
    rows = ["| zone | people | people/m² | level |", "|---|---:|---:|---|"]
    for sample in samples:
        count = sample.value("count")
        density = sample.value("density")
        level = now.zone_level(sample.camera, sample.zone)
        rows.append(
            f"| {sample.zone} | {'' if count is None else f'{count:.1f}'} | "
            f"{'' if density is None else f'{density:.2f}'} | {level_markdown(level)} |"
        )
    return "\n".join(rows)
