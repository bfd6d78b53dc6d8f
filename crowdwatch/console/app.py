"""The console's entry: open the store, log the user in, and route to the pages.

``streamlit run app.py -- --store PATH [--recordings DIR]`` (or ``crowdwatch console``).
Without ``--store`` the console opens ``$CROWDWATCH_STORE``, else the demo's
``out/demo/crowdwatch.db``; ``--recordings`` is the folder given to ``crowdwatch run --record``.
``?page=alerts`` (venue, live, camera, alerts, setup, review) opens a page directly; the Venue
page comes first when the event has a ``venue:``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import streamlit as st

from crowdwatch.console import alertbar
from crowdwatch.console.auth import ALLOW_OPEN_ENV, open_console_refusal
from crowdwatch.console.context import (
    OPERATOR_NAME_KEY,
    ConsoleContext,
    build_context,
    log_out,
    shared_store,
)
from crowdwatch.console.data import console_folders, store_target
from crowdwatch.console.views import alerts, camera, live, review, setup, venue
from crowdwatch.store import StoreError

# url path -> (title, icon, renderer)
PAGES: dict[str, tuple[str, str, Callable[[ConsoleContext], None]]] = {
    "venue": ("Venue", ":material/map:", venue.render),
    "live": ("Live wall", ":material/grid_view:", live.render),
    "camera": ("Camera", ":material/videocam:", camera.render),
    "alerts": ("Alerts", ":material/notifications_active:", alerts.render),
    "setup": ("Setup", ":material/tune:", setup.render),
    "review": ("Review", ":material/history:", review.render),
}


# Served by this server itself: an emoji or material icon would make the browser fetch the
# favicon from the internet (an error on every page of an offline control room).
ICON = Path(__file__).with_name("assets") / "favicon.png"


def main(argv: Sequence[str] | None = None) -> None:
    """Run one script pass of the console (Streamlit calls this on every interaction)."""
    st.set_page_config(page_title="crowdwatch console", page_icon=str(ICON), layout="wide")
    argv = sys.argv[1:] if argv is None else argv
    target = store_target(argv, os.environ)
    if _missing_file(target):
        st.title("crowdwatch console")
        st.warning(
            f"No store at `{target}`. Fill one with `crowdwatch demo` (writes "
            "`out/demo/crowdwatch.db`) or run the engine with `--store`, then reload."
        )
        return
    try:
        store = shared_store(target)
    except StoreError as error:
        st.error(f"Cannot open the store: {error}")
        return
    if not store.users():
        refusal = open_console_refusal(
            st.get_option("server.address"),
            st.context.ip_address,
            allowed="--allow-open" in argv or os.environ.get(ALLOW_OPEN_ENV) == "1",
        )
        if refusal is not None:
            st.title("crowdwatch console")
            st.error(f"Refused: {refusal}.")
            return
    ctx = build_context(store, console_folders(store, argv, os.environ))
    if ctx is None:
        return
    _sidebar(ctx, target)
    alertbar.render(ctx)  # the same bar, colour and title on every page
    # The site plan first when the event has a venue; else the cameras' live wall.
    first = "venue" if ctx.config is not None and ctx.config.venue is not None else "live"
    requested = st.query_params.get("page", first)
    pages = [
        st.Page(
            _bound(render, ctx, key),
            title=title,
            icon=icon,
            url_path=key,
            default=(key == requested if requested in PAGES else key == first),
        )  # fmt: skip
        for key, (title, icon, render) in PAGES.items()
    ]
    st.navigation(pages).run()


def _bound(render: Callable[[ConsoleContext], None], ctx: ConsoleContext, key: str):
    def page() -> None:
        render(ctx)

    page.__name__ = f"page_{key}"
    return page


def _sidebar(ctx: ConsoleContext, target: str) -> None:
    with st.sidebar:
        if ctx.user.authenticated:
            st.caption(f"Logged in as **{ctx.user.name}** ({ctx.user.role})")
            if st.button("Log out", key="logout"):
                log_out(ctx.store)
                st.rerun()
        else:
            st.caption("Open console: no users configured.")
            st.text_input("Your name (for the action log)", key=OPERATOR_NAME_KEY)
        st.toggle(
            "Sound for new warnings and criticals", key=alertbar.SOUND_KEY,
            help="A short beep made by the browser (no network) when a warning or critical "
            "alert opens.",
        )  # fmt: skip
        st.caption(f"Store: `{_short(target)}`", help=target)


def _short(target: str) -> str:
    """A long store path cut to its last two parts for the sidebar."""
    parts = Path(target).parts
    return target if "://" in target or len(parts) <= 3 else str(Path("…", *parts[-2:]))


def _missing_file(target: str) -> bool:
    """True for a plain SQLite path that does not exist (opening it would create it empty)."""
    if "://" in target or target == ":memory:":
        return False
    return not Path(target).expanduser().exists()
