"""The alert bar every page shows at its top: coloured by the worst level, the count of open
alerts, the oldest unacknowledged ones first with an Acknowledge button each; it also sets the
browser tab's title and, when the operator turned sound on, beeps for new warnings and
criticals (a WebAudio tone made in the browser: no audio file, no network).

Acknowledging (here, on the wall and on the Alerts page) goes through :func:`acknowledge`,
which shows an error that stays on screen when the store refuses or fails the save.
"""

from __future__ import annotations

import html
import json
import time

import streamlit as st

from crowdwatch.console.browser import run_js
from crowdwatch.console.charts import level_hex
from crowdwatch.console.context import ConsoleContext
from crowdwatch.console.levels import LEVELS, LOUD_LEVELS, Situation
from crowdwatch.store import SqlStore, StoredAlert

REFRESH_S = 2.0
SOUND_KEY = "alert-sound"
FLASH_KEY = "alerts-flash"
FLASH_ERROR_KEY = "alerts-flash-error"
BAR_ACK_LIMIT = 3
_TEXT_ON = {"normal": "#ffffff", "advisory": "#222222", "warning": "#ffffff", "critical": "#ffffff"}


def situation(store: SqlStore) -> Situation:
    """The levels of every zone and camera now (one store read of metrics and alerts)."""
    return Situation.of(store.latest_metrics(), store.active_alerts())


def render(ctx: ConsoleContext) -> None:
    """The alert bar (a fragment refreshing on its own every two seconds)."""
    _flash()
    _bar(ctx)


def _flash() -> None:
    message = st.session_state.pop(FLASH_KEY, None)
    if message:
        st.success(message)
    problem = st.session_state.pop(FLASH_ERROR_KEY, None)
    if problem:
        st.error(problem)


@st.fragment(run_every=REFRESH_S)
def _bar(ctx: ConsoleContext) -> None:
    now = situation(ctx.store)
    st.markdown(bar_html(now), unsafe_allow_html=True)
    waiting = now.waiting
    if waiting and ctx.user.can_change:
        columns = st.columns(BAR_ACK_LIMIT)
        for column, alert in zip(columns, waiting[:BAR_ACK_LIMIT], strict=False):
            with column.popover(f"Acknowledge {alert.camera}/{alert.zone} {alert.level.upper()}"):
                acknowledge_form(ctx, alert, prefix="bar-")
    browser_signals(now, bool(st.session_state.get(SOUND_KEY, False)))


def bar_html(now: Situation, clock: float | None = None) -> str:
    """The bar's HTML: colour by the worst level, the count, the oldest waiting alerts first.
    Every name from the store is escaped."""
    level = now.level if now.level in LEVELS else "advisory"  # an unknown level still shows
    colour, text = level_hex(level), _TEXT_ON.get(level, "#ffffff")
    active, waiting = now.active, now.waiting
    clock = time.time() if clock is None else clock
    if active:
        head = (
            f"⚠ {len(active)} ACTIVE ALERT{'S' if len(active) != 1 else ''} · worst "
            f"{level.upper()} · {len(waiting)} not acknowledged"
        )
    elif level != "normal":
        head = f"{level.upper()}: levels rising, no alert yet"
    else:
        head = "✓ No active alerts · all zones normal"
    items = [
        f"<li>{html.escape(f'{a.camera}/{a.zone}')} — {html.escape(a.rule)} "
        f"<b>{html.escape(a.level.upper())}</b> for {_age(clock - a.opened)}"
        f"{' · acknowledged by ' + html.escape(a.acknowledged_by) if a.acknowledged else ''}</li>"
        for a in active[:5]
    ]
    items += [
        f"<li>{html.escape(f'{camera}/{zone}')} at <b>{html.escape(level_name.upper())}</b> "
        "(no alert yet)</li>"
        for camera, zone, level_name in now.elevated()[:3]
    ]
    more = f"<li>… and {len(active) - 5} more on the Alerts page</li>" if len(active) > 5 else ""
    listing = f"<ul style='margin:0.2em 0 0 1.2em'>{''.join(items)}{more}</ul>" if items else ""
    size = "1.25em" if level in LOUD_LEVELS else "1.05em"
    return (
        f"<div class='cw-alert-bar cw-level-{level}' data-level='{level}' "
        f"data-count='{len(active)}' role='alert' style='background:{colour};color:{text};"
        f"padding:0.5em 0.9em;border-radius:0.4em;font-size:{size};font-weight:600'>"
        f"{html.escape(head)}{listing}</div>"
    )


def browser_signals(now: Situation, sound: bool) -> None:
    """Set the tab's title (kept against Streamlit's own page titles) and beep once per new
    open warning or critical when ``sound`` is on. Nothing is fetched: the tone is made by the
    browser's WebAudio."""
    loud = sorted(a.id for a in now.waiting if a.level in LOUD_LEVELS)
    script = _SIGNALS_JS % {
        "title": json.dumps(now.title()),
        "loud": json.dumps(loud),
        "sound": "true" if sound else "false",
    }
    run_js(script)


_SIGNALS_JS = """
const top_ = window.parent;
top_.__cwTitle = %(title)s;
if (!top_.__cwTitleTimer) {
  top_.__cwTitleTimer = top_.setInterval(() => {
    if (top_.document.title !== top_.__cwTitle) top_.document.title = top_.__cwTitle;
  }, 300);
}
top_.document.title = top_.__cwTitle;
const heard = top_.__cwHeard || (top_.__cwHeard = {});
const fresh = %(loud)s.filter(id => !heard[id]);
fresh.forEach(id => { heard[id] = true; });
if (%(sound)s && fresh.length) {
  try {
    const Audio = top_.AudioContext || top_.webkitAudioContext;
    const audio = top_.__cwAudio || (top_.__cwAudio = new Audio());
    if (audio.state === "suspended") audio.resume();
    [0, 0.35].forEach(delay => {
      const tone = audio.createOscillator(), gain = audio.createGain();
      tone.frequency.value = 880; tone.type = "square"; gain.gain.value = 0.15;
      tone.connect(gain); gain.connect(audio.destination);
      tone.start(audio.currentTime + delay); tone.stop(audio.currentTime + delay + 0.25);
    });
    const data = top_.document.body.dataset;
    data.cwBeeps = String(Number(data.cwBeeps || 0) + 1);
  } catch (problem) { top_.console.warn("crowdwatch: no sound", problem); }
}
"""


def acknowledge_form(ctx: ConsoleContext, alert: StoredAlert, prefix: str = "") -> None:
    """A form that acknowledges ``alert`` under the user's name with a note. ``prefix`` keeps
    the forms of the bar, the wall and the Alerts page apart."""
    disabled = not ctx.user.can_change
    with st.form(f"ack-{prefix}{alert.id}", clear_on_submit=True, border=False):
        typed = (
            ""
            if ctx.user.authenticated
            else st.text_input("Your name", key=f"{prefix}who-{alert.id}", disabled=disabled)
        )
        note = st.text_input(
            "Note", key=f"{prefix}note-{alert.id}", placeholder="e.g. stewards sent",
            disabled=disabled,
        )  # fmt: skip
        clicked = st.form_submit_button("Acknowledge", type="primary", disabled=disabled)
    if disabled:
        st.caption("Viewers watch only: ask an operator to acknowledge.")
    if clicked:
        acknowledge(ctx, alert.id, typed, note)


def acknowledge(ctx: ConsoleContext, alert_id: str, typed_name: str, note: str) -> bool:
    """Acknowledge an alert if the user may; on success the page reruns to show it everywhere.
    A failed save is shown (and kept on screen across the rerun), never silently lost."""
    if not ctx.attempt("acknowledge alerts", f"alert:{alert_id}"):
        return False
    operator = ctx.actor(typed_name)
    if not operator:
        st.error("Enter your name to acknowledge the alert.")
        return False
    try:
        ctx.store.acknowledge(alert_id, operator, note.strip())
    except (KeyError, ValueError) as problem:
        message = f"Acknowledgement NOT saved: {problem.args[0] if problem.args else problem}"
        st.error(message)
        st.session_state[FLASH_ERROR_KEY] = message
        return False
    except Exception as problem:  # the store is down or locked: say so, never lose it quietly
        message = f"Acknowledgement NOT saved (store error: {problem}). Try again."
        st.error(message)
        st.session_state[FLASH_ERROR_KEY] = message
        return False
    st.session_state[FLASH_KEY] = f"Acknowledgement by {operator} saved."
    st.rerun()
    return True


def _age(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"
