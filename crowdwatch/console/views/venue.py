"""Venue page: every camera on one site plan, the fused people/m² heat, zones in their levels.

The first page when the event has a ``venue:``. The plan is the configured site-plan image or
a plain metric grid; on it the live fused people/m² (from the venue's live picture beside the
recordings), each venue zone outlined in its level's colour (grey while ``unknown``: nobody
live watches enough of it, ranked like a warning), the gates with their flows, and each camera's
ground footprint with a link to its page. The table beside it gives each zone's people,
people/m², covered share and both forecasts, each labelled.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
import streamlit as st

from crowdwatch.annotate import LEVEL_COLOURS
from crowdwatch.console.context import ConsoleContext
from crowdwatch.console.widgets import level_markdown, show_picture
from crowdwatch.measures import DensityColourScale
from crowdwatch.recording.venue_preview import VenuePreview, read_venue_preview
from crowdwatch.store import MetricSample
from crowdwatch.venue import VenueConfig

REFRESH_S = 2.0
PLAN_WIDTH_PX = 900
UNKNOWN_COLOUR = (150, 150, 150)  # BGR grey: not known, never "normal"
FRESH_S = 10.0  # an older heat picture is shown marked STALE


def render(ctx: ConsoleContext) -> None:
    """The Venue page."""
    venue = ctx.config.venue if ctx.config is not None else None
    if venue is None:
        st.info("No venue configured: add a `venue:` section to the event YAML.")
        return
    st.title(f"Venue: {venue.name}")
    _venue(ctx, venue)


@st.fragment(run_every=REFRESH_S)
def _venue(ctx: ConsoleContext, venue: VenueConfig) -> None:
    samples = ctx.store.latest_metrics(venue.name)
    zones = {s.zone: s for s in samples if s.kind == "zone"}
    gates = {s.zone: s for s in samples if s.kind == "line"}
    preview = _preview(ctx, venue.name)
    left, right = st.columns([1, 1])
    with left:
        image = draw_venue(venue, zones=zones, gates=gates, preview=preview)
        age = ""
        if preview is not None:
            seconds = time.time() - preview.time
            age = f" · heat {seconds:.0f} s old" + (" (STALE)" if seconds > FRESH_S else "")
        show_picture(image, caption=f"people/m² on the plan{age}", max_width=PLAN_WIDTH_PX)
        st.caption(" · ".join(f"{name} {limits}/m²" for name, limits, _ in _LEGEND))
    with right:
        st.markdown("#### Zones")
        st.markdown(zone_table(venue, zones))
        if venue.gates:
            st.markdown("#### Gates")
            st.markdown(gate_table(gates))
        cameras = sorted(preview.footprints) if preview is not None else []
        if cameras:
            st.markdown("#### Cameras on the plan")
            st.markdown(" · ".join(f"[{name}](?page=camera&camera={name})" for name in cameras))


def _preview(ctx: ConsoleContext, venue: str) -> VenuePreview | None:
    for folder in ctx.folders.recordings:
        found = read_venue_preview(Path(folder) / venue)
        if found is not None:
            return found
    return None


def zone_table(venue: VenueConfig, zones: Mapping[str, MetricSample]) -> str:
    """Markdown rows: zone, state, people, people/m², covered, both forecasts, level."""
    rows = [
        "| zone | state | people | people/m² | covered | min. to critical (mass balance) "
        "| min. to limit (trend) | level |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for zone in venue.zones:
        sample = zones.get(zone.name)
        if sample is None:
            rows.append(f"| {zone.name} | no data | | | | | | {level_markdown('warning')} |")
            continue
        state = "UNKNOWN" if sample.value("unknown") else "known"
        rows.append(
            f"| {zone.name} | {state} | {_number(sample.value('count'), 1)} "
            f"| {_number(sample.value('density'), 2)} "
            f"| {_percent(sample.value('covered_fraction'))} "
            f"| {_number(sample.value('minutes_to_critical'), 0)} "
            f"| {_number(sample.value('minutes_to_limit'), 0)} | {level_markdown(sample.level)} |"
        )
    return "\n".join(rows)


def gate_table(gates: Mapping[str, MetricSample]) -> str:
    """Markdown rows: gate, flow in and out (people/m/min), crossed each way, level."""
    rows = ["| gate | in, people/m/min | out, people/m/min | crossed in / out | level |",
            "|---|---|---|---|---|"]  # fmt: skip
    for name, sample in sorted(gates.items()):
        rows.append(
            f"| {name} | {_number(sample.value('flow_in'), 1)} "
            f"| {_number(sample.value('flow_out'), 1)} "
            f"| {_number(sample.value('crossed_in'), 0)} "
            f"/ {_number(sample.value('crossed_out'), 0)} "
            f"| {level_markdown(sample.level)} |"
        )
    return "\n".join(rows)


_SCALE = DensityColourScale()
_LEGEND = _SCALE.legend()


def draw_venue(
    venue: VenueConfig,
    *,
    zones: Mapping[str, MetricSample],
    gates: Mapping[str, MetricSample],
    preview: VenuePreview | None,
    width_px: int = PLAN_WIDTH_PX,
) -> np.ndarray:
    """The plan (a metric grid with 5 m lines) with the fused heat, footprints, gates and zones
    in their levels' colours (grey when unknown). BGR uint8."""
    plan = _plan_image(venue)
    if plan is not None:  # the site plan itself, scaled to the page
        scale = width_px / plan.shape[1]
        image = cv2.resize(plan, (width_px, max(1, round(plan.shape[0] * scale))))

        def to_px(points: Sequence[Sequence[float]]) -> np.ndarray:
            return venue.plan.to_plan_px(points) * scale

        _draw_venue_parts(image, venue, zones=zones, gates=gates, preview=preview, to_px=to_px)
        return image
    x_min, y_min, x_max, y_max = venue.bounds_m()
    scale = width_px / max(x_max - x_min, 1e-6)
    height_px = max(1, round((y_max - y_min) * scale))

    def to_px(points: Sequence[Sequence[float]]) -> np.ndarray:
        points = np.asarray(points, np.float64).reshape(-1, 2)
        return np.stack([(points[:, 0] - x_min) * scale, (y_max - points[:, 1]) * scale], 1)

    image = np.full((height_px, width_px, 3), 245, np.uint8)
    for x in np.arange(np.ceil(x_min / 5) * 5, x_max, 5.0):
        cv2.line(image, _pt(to_px([[x, y_min]])[0]), _pt(to_px([[x, y_max]])[0]), (225,) * 3, 1)
    for y in np.arange(np.ceil(y_min / 5) * 5, y_max, 5.0):
        cv2.line(image, _pt(to_px([[x_min, y]])[0]), _pt(to_px([[x_max, y]])[0]), (225,) * 3, 1)
    _draw_venue_parts(image, venue, zones=zones, gates=gates, preview=preview, to_px=to_px)
    return image


def _plan_image(venue: VenueConfig) -> np.ndarray | None:
    """The configured site-plan picture (None: none, or unreadable: the metric grid is drawn)."""
    if venue.plan is None or not venue.plan.image:
        return None
    image = cv2.imread(venue.plan.image)
    return image if image is not None and image.size else None


def _draw_venue_parts(image, venue, *, zones, gates, preview, to_px) -> None:
    """Heat, camera footprints, gates and zones on the plan (in place)."""
    if preview is not None:
        _draw_heat(image, preview, to_px)
        for name, footprint in preview.footprints.items():
            polygon = to_px(footprint).astype(np.int32)
            cv2.polylines(image, [polygon], True, (160, 110, 40), 1, cv2.LINE_AA)
            _label(image, name, polygon.min(axis=0) + [4, 14], (160, 110, 40))
    for gate in venue.gates:
        start, end = to_px([gate.start_m, gate.end_m])
        sample = gates.get(gate.name)
        colour = LEVEL_COLOURS.get(sample.level if sample else "normal", LEVEL_COLOURS["normal"])
        cv2.line(image, _pt(start), _pt(end), colour, 4, cv2.LINE_AA)
        text = gate.name
        if sample is not None and sample.value("flow_rate") is not None:
            text += f" {sample.value('flow_rate'):.0f}/m/min"
        _label(image, text, (start + end) / 2 + [6, -6], (40, 40, 40))
    for zone in venue.zones:
        sample = zones.get(zone.name)
        unknown = sample is None or bool(sample.value("unknown"))
        level = sample.level if sample is not None else "warning"
        colour = UNKNOWN_COLOUR if unknown else LEVEL_COLOURS.get(level, LEVEL_COLOURS["normal"])
        polygon = to_px(zone.polygon_m).astype(np.int32)
        cv2.polylines(image, [polygon], True, colour, 3, cv2.LINE_AA)
        text = f"{zone.name}: unknown" if unknown else f"{zone.name}: {sample.value('count'):.1f}"
        _label(image, text, polygon.min(axis=0) + [6, 20], colour if unknown else (30, 30, 30))


def _draw_heat(image: np.ndarray, preview: VenuePreview, to_px) -> None:
    """The fused people/m² in the crowd-safety bands' colours, where a live camera sees."""
    x0, y0, x1, y1 = preview.bounds
    top_left, bottom_right = to_px([[x0, y1], [x1, y0]])
    left, top = np.floor(top_left).astype(int)
    right, bottom = np.ceil(bottom_right).astype(int)
    width, height = right - left, bottom - top
    if width <= 0 or height <= 0:
        return
    grid = cv2.resize(preview.per_m2, (width, height), interpolation=cv2.INTER_LINEAR)
    colours = _SCALE.colourize(np.nan_to_num(grid, nan=0.0))
    seen = np.isfinite(grid) & (grid > 0.05)
    h, w = image.shape[:2]
    ys, xs = slice(max(top, 0), min(bottom, h)), slice(max(left, 0), min(right, w))
    inner = (slice(ys.start - top, ys.stop - top), slice(xs.start - left, xs.stop - left))
    region, mask = image[ys, xs], seen[inner]
    region[mask] = (0.45 * colours[inner][mask] + 0.55 * region[mask]).astype(np.uint8)


def _label(image: np.ndarray, text: str, at, colour) -> None:
    x, y = int(at[0]), int(at[1])
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 3,
                cv2.LINE_AA)  # fmt: skip
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, colour, 1, cv2.LINE_AA)


def _pt(point) -> tuple[int, int]:
    return int(round(point[0])), int(round(point[1]))


def _number(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"
