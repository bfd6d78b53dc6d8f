"""Review: replay a camera's recording over a time range with its heat map and its alerts on a
timeline (scrub, jump to an alert, or play at 1-10x), re-run the alert rules with other
thresholds, and export a report."""

from __future__ import annotations

import datetime as dt
import math
import time

import pandas as pd
import streamlit as st

from crowdwatch.config.schema import EventConfig
from crowdwatch.console.charts import (
    METRIC_TITLES,
    alerts_table,
    chart_values,
    metric_columns,
    replayed_table,
    samples_table,
    timeline_chart,
    trend_chart,
)
from crowdwatch.console.condensed import CALM_FACTOR, busy_spans, condensed_step
from crowdwatch.console.context import ConsoleContext
from crowdwatch.console.pictures import Picture, alert_snapshot, heat_of, picture_at
from crowdwatch.console.report import ReviewReport, alerts_csv, render_report_html, samples_csv
from crowdwatch.console.whatif import camera_rules, replay_samples, venue_rules, with_thresholds
from crowdwatch.console.widgets import camera_picker, show_picture, threshold_sliders
from crowdwatch.store import MetricSample, SqlStore, StoredAlert

_CHARTED = ("count", "density", "occupancy", "flow_rate")
SPEEDS = [1, 2, 5, 10]
PLAY_TICK_S = 1.0
_POSITION = "review-position"


def render(ctx: ConsoleContext) -> None:
    """The Review page (times on its sliders are naive UTC datetimes)."""
    st.title("Review")
    if not ctx.cameras:
        st.info("Nothing recorded yet.")
        return
    camera = camera_picker(ctx.cameras, key="review-camera")
    bounds = recorded_span(ctx, camera)
    if bounds is None:
        st.info(f"No metrics recorded for {camera}.")
        return
    start, end = _range_picker(bounds)
    samples = ctx.store.metrics(camera, start=start, end=end)
    alerts = ctx.store.alerts(camera=camera, start=start, end=end)
    table, alert_rows = samples_table(samples), alerts_table(alerts, now=end)
    _alert_jumper(start, end, alerts)
    play, condense, speed, heat = st.columns([1, 2, 3, 3], vertical_alignment="bottom")
    playing = play.toggle("Play", key="review-play")
    condensed = condense.toggle(
        "Condensed", key="review-condensed",
        help=f"Calm periods play {CALM_FACTOR}× faster; around alerts and rapid rises of the "
        "count it slows to the chosen speed.",
    )  # fmt: skip
    rate = speed.select_slider("Speed", options=SPEEDS, value=1, format_func=lambda x: f"{x}×",
                               key="review-speed")  # fmt: skip
    heat.radio("Heat map", HEAT_CHOICES, key="review-heat", horizontal=True,
               help="now: the people in this frame; fading: where it has been crowded over "
               "the last seconds (it trails people who walk).")  # fmt: skip
    spans = busy_spans(samples, alerts) if condensed else None
    player = _playing if playing else _player
    player(ctx, camera, start, end, alert_rows, rate, spans)
    for gap in ctx.store.gaps(camera, start, end):
        until = "still" if gap.end is None else f"until {_clock(gap.end)}"
        st.caption(f"Not analysing from {_clock(gap.start)} {until} ({gap.reason}).")
    _trends(table, alert_rows)
    whatif, note = _what_if(ctx, camera, samples, alert_rows)
    _export(ctx, camera, start, end, table, alert_rows, whatif, note)


def recorded_span(ctx: ConsoleContext, camera: str) -> tuple[float, float] | None:
    """First and last sample times recorded for the camera, or None."""
    first = ctx.store.metrics(camera, limit=1)
    latest = ctx.store.latest_metrics(camera)
    if not first or not latest:
        return None
    return first[0].time, max(sample.time for sample in latest)


def _range_picker(bounds: tuple[float, float]) -> tuple[float, float]:
    low, high = (_datetime(value) for value in bounds)
    if high - low < dt.timedelta(seconds=2):
        return bounds
    chosen = st.slider(
        "Time range (UTC)", min_value=low, max_value=high, value=(low, high),
        step=dt.timedelta(seconds=1), format="HH:mm:ss", key="review-range",
    )  # fmt: skip
    return _epoch(chosen[0]), _epoch(chosen[1])


def _alert_jumper(start: float, end: float, alerts: list[StoredAlert]) -> None:
    low, high = _datetime(start), _datetime(end)
    current = st.session_state.get(_POSITION)
    if current is None or not low <= current <= high:
        st.session_state[_POSITION] = low
    if not alerts:
        return
    choice, jump = st.columns([4, 1], vertical_alignment="bottom")
    ordered = sorted(alerts, key=lambda alert: alert.start)
    picked = choice.selectbox(
        "Alerts in this range",
        ordered,
        format_func=lambda a: f"{_clock(a.start)} {a.zone} {a.rule} {a.level.upper()}",
        key="review-alert",
    )
    jump.button(
        "Jump to alert",
        key="review-jump",
        on_click=_jump,
        # to the moment it opened (after its latch), so the frame shows it in its colour
        args=(_datetime(min(max(math.ceil(picked.opened), start), end)),),
    )


def _jump(position: dt.datetime) -> None:
    st.session_state[_POSITION] = position


def _player(
    ctx: ConsoleContext,
    camera: str,
    start: float,
    end: float,
    alerts: pd.DataFrame,
    rate: int,
    spans: list[tuple[float, float]] | None = None,
    advance: bool = False,
) -> None:
    """Position slider, alert timeline with its cursor, and the recording at the position.
    With ``spans`` (condensed review) calm stretches move :data:`CALM_FACTOR` times faster."""
    low, high = _datetime(start), _datetime(end)
    if advance:  # playing: move on before the slider is drawn
        here = _epoch(st.session_state[_POSITION])
        step = PLAY_TICK_S * rate
        if spans is not None:
            step = condensed_step(here, spans, step)
            st.caption("Condensed: " + ("slowed (alert or rapid rise)" if step <= PLAY_TICK_S *
                                        rate else f"calm, {CALM_FACTOR}× faster"))  # fmt: skip
        moved = st.session_state[_POSITION] + dt.timedelta(seconds=round(step))
        st.session_state[_POSITION] = min(moved, high)
    position = _epoch(
        st.slider(
            "Position",
            min_value=low,
            max_value=high,
            step=dt.timedelta(seconds=1),
            format="HH:mm:ss",
            key=_POSITION,
        )  # fmt: skip
    )
    _show_timeline(timeline_chart(alerts, _ts(start), _ts(end), cursor=_ts(position)))
    _picture(ctx, camera, position)


@st.fragment(run_every=PLAY_TICK_S)
def _playing(
    ctx: ConsoleContext,
    camera: str,
    start: float,
    end: float,
    alerts: pd.DataFrame,
    rate: int,
    spans: list[tuple[float, float]] | None = None,
) -> None:
    """The player advancing by itself, only this part of the page rerunning."""
    _player(ctx, camera, start, end, alerts, rate, spans, advance=True)


HEAT_CHOICES = ("both", "now", "fading")


def _picture(ctx: ConsoleContext, camera: str, position: float) -> None:
    config = ctx.camera_config(camera)
    half_life = ctx.config.heatmap.half_life_s if ctx.config is not None else 3.0
    choice = st.session_state.get("review-heat", "both")
    modes = ["now", "fading"] if choice == "both" else [choice]
    columns = st.columns(len(modes))
    for column, mode in zip(columns, modes, strict=True):
        with column:
            picture = picture_at(
                ctx.store, camera, ctx.folders, when=position, config=config,
                heat_mode=mode, half_life_s=half_life,
            )  # fmt: skip
            label = ""
            if picture is None:
                picture = alert_snapshot(ctx.store, camera, ctx.folders, after=position)
                if picture is not None:
                    note = f"nothing recorded here; next {picture.caption}"
                    picture = Picture(picture.image, picture.time, note)
            elif picture.caption == "recording":
                label = (
                    " · heat "
                    + heat_of(ctx.store, camera, ctx.folders, picture.time, mode, half_life)[2]
                )
            caption = f"{picture.caption} at {_clock(picture.time)} UTC{label}" if picture else ""
            show_picture(picture.image if picture else None, caption, max_width=1280)


def _trends(table: pd.DataFrame, alerts: pd.DataFrame) -> None:
    if table.empty:
        st.info("No metrics in this range.")
        return
    for metric in [m for m in metric_columns(table) if m in _CHARTED]:
        st.markdown(f"**{METRIC_TITLES.get(metric, metric).capitalize()}**")
        kind = "line" if metric == "flow_rate" else "zone"
        trend = chart_values(table, metric, kind)
        st.altair_chart(trend_chart(trend, metric, alerts), width="stretch")


def _what_if(
    ctx: ConsoleContext, camera: str, samples: list[MetricSample], recorded: pd.DataFrame
) -> tuple[pd.DataFrame | None, str]:
    st.subheader("What if the thresholds had been different?")
    start = min((sample.time for sample in samples), default=None)
    in_force = config_in_force(ctx.store, start) if start is not None else None
    event = in_force[1] if in_force is not None else ctx.config
    venue = event.venue if event is not None else None
    config = None
    if in_force is not None:
        config = next((c for c in in_force[1].cameras if c.name == camera), None)
    if config is None:
        config = ctx.camera_config(camera)
    if in_force is not None and (config is not None or venue is not None):
        st.caption(
            f"Starting from the thresholds in force then: configuration version {in_force[0]}"
            f" (saved {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(in_force[2]))} UTC)."
        )
    if venue is not None and camera == venue.name:  # the venue's zones and gates
        rules = venue_rules(venue)
    elif config is None:
        st.caption("The store holds no configuration for this camera.")
        return None, ""
    else:
        rules = camera_rules(config, samples)
    if not rules:
        st.caption("This camera's zones have no alert rules.")
        return None, ""
    changed, notes = {}, []
    for target, target_rules in rules.items():
        st.markdown(f"**{target}**")
        edited = []
        version = in_force[0] if in_force is not None else 0
        for index, rule in enumerate(target_rules):
            key = f"whatif-{target}-{index}" + (f"-v{version}" if version > 1 else "")
            original, thresholds = threshold_sliders(rule, key)
            try:
                edited.append(with_thresholds(original, thresholds))
            except ValueError as problem:
                st.error(f"{target} {rule.label}: {problem}")
                edited.append(original)
            notes += [
                f"{target} {rule.label} {level} {value:g}" for level, value in thresholds.items()
            ]
        changed[target] = edited
    replayed = replayed_table(replay_samples(changed, samples))
    summary = f"{len(replayed)} alert(s) would have fired; {len(recorded)} were recorded."
    (st.warning if len(replayed) > len(recorded) else st.info)(summary)
    if not replayed.empty:
        start, end = replayed["start"].min(), replayed["end"].max()
        _show_timeline(timeline_chart(replayed, start, end))
        st.dataframe(
            replayed[["start", "end", "zone", "rule", "level", "peak"]],
            hide_index=True,
            column_config={
                "start": st.column_config.DatetimeColumn(format="HH:mm:ss"),
                "end": st.column_config.DatetimeColumn(format="HH:mm:ss"),
            },
        )
    return replayed, "Thresholds: " + "; ".join(notes)


def _export(
    ctx: ConsoleContext,
    camera: str,
    start: float,
    end: float,
    table: pd.DataFrame,
    alerts: pd.DataFrame,
    whatif: pd.DataFrame | None,
    note: str,
) -> None:
    st.subheader("Export")
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(start))
    metrics_column, alerts_column, report_column = st.columns(3)
    metrics_column.download_button(
        "Metrics CSV", samples_csv(table), f"{camera}-{stamp}-metrics.csv", "text/csv",
        key="export-metrics",
    )  # fmt: skip
    alerts_column.download_button(
        "Alerts CSV", alerts_csv(alerts), f"{camera}-{stamp}-alerts.csv", "text/csv",
        key="export-alerts",
    )  # fmt: skip
    report = ReviewReport(
        title=f"{ctx.config.name if ctx.config else 'crowdwatch'}: {camera}",
        camera=camera,
        start=start,
        end=end,
        samples=table,
        alerts=alerts,
        whatif=whatif,
        whatif_note=note,
        generated_by=ctx.user.name,
    )
    # The page is made now (cached on its inputs), not deferred to the click: a deferred file is
    # dropped when a what-if slider reruns the page, and the download then did nothing.
    report_column.download_button(
        "Printable report (HTML)", _report_html(report),
        f"{camera}-{stamp}-report.html", "text/html", key="export-report", on_click="ignore",
    )  # fmt: skip


@st.cache_data(max_entries=8, show_spinner="Preparing the report…")
def _report_html(report: ReviewReport) -> str:
    return render_report_html(report)


def config_in_force(store: SqlStore, when: float) -> tuple[int, EventConfig, float] | None:
    """(version, config, saved at) of the configuration the engine ran at ``when``: the last
    version saved by then (the first one when the range starts before any)."""
    versions = store.config_versions()
    if not versions:
        return None
    chosen = [v for v in versions if v.time <= when] or versions[:1]
    version = chosen[-1]
    try:
        return version.version, EventConfig.model_validate(version.config), version.time
    except ValueError:
        return None


def _datetime(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(round(epoch), tz=dt.timezone.utc).replace(tzinfo=None)


def _show_timeline(chart) -> None:
    # Streamlit's default chart height would squash the rows; use the chart's own.
    st.altair_chart(chart, width="stretch", height=int(chart.height))


def _epoch(moment: dt.datetime) -> float:
    """Epoch seconds of a naive UTC datetime (the sliders' values)."""
    return moment.replace(tzinfo=dt.timezone.utc).timestamp()


def _ts(epoch: float) -> pd.Timestamp:
    return pd.Timestamp(epoch, unit="s", tz="UTC")


def _clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(epoch))
