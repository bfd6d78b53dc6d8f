"""Alerts: active alerts first and loud, acknowledgement with name and note, filtered history,
and the log of every operator action."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from crowdwatch.console.alertbar import acknowledge_form
from crowdwatch.console.charts import alerts_table, to_datetime
from crowdwatch.console.context import ConsoleContext
from crowdwatch.console.levels import attention_order
from crowdwatch.console.pictures import read_image, restamp
from crowdwatch.console.widgets import level_badge, show_picture
from crowdwatch.store import StoredAlert

REFRESH_S = 2.0
HISTORY_LIMIT = 2000


def render(ctx: ConsoleContext) -> None:
    """The Alerts page."""
    st.title("Alerts")
    _active(ctx)
    st.divider()
    _history(ctx)
    st.divider()
    _actions(ctx)


@st.fragment(run_every=REFRESH_S)
def _active(ctx: ConsoleContext) -> None:
    active = attention_order(ctx.store.active_alerts())
    if not active:
        st.success("No active alerts.")
        return
    st.error(f"**{len(active)} ACTIVE ALERT(S)**, oldest unacknowledged first")
    # Stable order (waiting before acknowledged, oldest first): a new alert is added at the
    # end, so the card someone is typing a note in never moves.
    for alert in active:
        _active_card(ctx, alert)


def _active_card(ctx: ConsoleContext, alert: StoredAlert) -> None:
    with st.container(border=True):
        text, picture = st.columns([3, 2])
        with text:
            level_badge(alert.level)
            st.markdown(
                f"### {alert.camera} / {alert.zone}\n"
                f"**{alert.rule}** ({alert.metric}) at **{_number(alert.value)}**, "
                f"peak {_number(alert.peak)}, "
                f"threshold {_number(alert.record.get('threshold'))}  \n"
                f"since {_clock(alert.start)} UTC ({_minutes(time.time() - alert.start)})"
            )
            if alert.acknowledged:
                st.info(
                    f"Acknowledged by **{alert.acknowledged_by}** at "
                    f"{_clock(alert.acknowledged_at)}: {alert.acknowledged_note or '(no note)'}"
                )
            else:
                acknowledge_form(ctx, alert)
        with picture:
            if alert.snapshot:
                snapshot = read_image(ctx.folders.alert_snapshot(alert.snapshot))
                if snapshot is not None:
                    snapshot = restamp(snapshot, alert.camera, alert.opened, alert.zone)
                    show_picture(snapshot, "when it opened", max_width=480)


@st.fragment(run_every=REFRESH_S)
def _history(ctx: ConsoleContext) -> None:
    """Refreshed with the active cards, so that it never shows "open" for a closed alert."""
    st.subheader("History")
    cameras, levels, states = st.columns(3)
    camera = cameras.selectbox("Camera", ["all", *ctx.cameras], key="history-camera")
    level = levels.selectbox(
        "Level", ["all", "critical", "warning", "advisory"], key="history-level"
    )
    state = states.selectbox(
        "Show", ["all", "not acknowledged", "acknowledged", "open", "closed"], key="history-state"
    )
    records = ctx.store.alerts(
        camera=None if camera == "all" else camera,
        level=None if level == "all" else level,
        active={"open": True, "closed": False}.get(state),
        acknowledged={"acknowledged": True, "not acknowledged": False}.get(state),
        limit=HISTORY_LIMIT,
    )
    table = alerts_table(records, now=time.time())
    if table.empty:
        st.info("No alerts match.")
        return
    st.dataframe(
        table[
            ["start", "end", "camera", "zone", "rule", "level", "peak", "open", "acknowledged_by"]
            + ["acknowledged_note", "id"]
        ],
        hide_index=True,
        column_config={
            "start": st.column_config.DatetimeColumn("start (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "end": st.column_config.DatetimeColumn("end (UTC)", format="HH:mm:ss"),
            "peak": st.column_config.NumberColumn(format="%.2f"),
            "acknowledged_by": st.column_config.TextColumn("acknowledged by"),
            "acknowledged_note": st.column_config.TextColumn("note"),
        },
    )
    waiting = [alert for alert in records if not alert.acknowledged and not alert.is_open]
    if waiting:
        with st.expander(f"Acknowledge a closed alert ({len(waiting)} waiting)"):
            choice = st.selectbox(
                "Alert",
                waiting,
                format_func=lambda a: f"{_clock(a.start)} {a.camera}/{a.zone} {a.rule} {a.level}",
                key="history-ack-choice",
            )
            acknowledge_form(ctx, choice, prefix="history-")


def _actions(ctx: ConsoleContext) -> None:
    st.subheader("Action log")
    entries = ctx.store.audit_log(limit=200)
    if not entries:
        st.caption("No operator actions yet.")
        return
    log = pd.DataFrame(
        {
            "time": to_datetime(pd.Series([entry.time for entry in entries], dtype=float)),
            "who": [entry.actor for entry in entries],
            "action": [entry.action for entry in entries],
            "target": [entry.target for entry in entries],
            "detail": [_detail(entry.detail) for entry in entries],
        }
    )
    st.dataframe(
        log,
        hide_index=True,
        column_config={
            "time": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm:ss")
        },
    )


def _detail(detail: dict) -> str:
    return ", ".join(f"{key}: {value}" for key, value in detail.items())


def _number(value) -> str:
    return "–" if value is None else f"{float(value):.2f}"


def _clock(epoch: float | None) -> str:
    return "" if epoch is None else time.strftime("%H:%M:%S", time.gmtime(epoch))


def _minutes(seconds: float) -> str:
    if seconds < 120:
        return f"{max(seconds, 0):.0f} s ago"
    return f"{seconds / 60:.0f} min ago" if seconds < 7200 else f"{seconds / 3600:.1f} h ago"
