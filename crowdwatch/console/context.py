"""The console's per-session context: the shared store, who is logged in, and the permission
checks every changing action goes through (refusals are written to the audit log)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import streamlit as st

from crowdwatch.config.schema import CameraConfig, EventConfig
from crowdwatch.console.auth import (
    OPEN_ACCESS,
    AccessDenied,
    ConsoleUser,
    require_change_right,
    verify_password,
)
from crowdwatch.console.browser import run_js
from crowdwatch.console.data import camera_names, event_config
from crowdwatch.console.pictures import Folders
from crowdwatch.console.sessions import COOKIE, LIFETIME_S, load_secret, make_token, read_token
from crowdwatch.store import SqlStore, open_store

_USER_KEY = "console_user"
_TOKEN_KEY = "console-session-token"
_LOGGED_OUT_KEY = "console-logged-out"
# The open console (no users) asks once, in the sidebar, whom to log changes under.
OPERATOR_NAME_KEY = "operator-name"


@dataclass
class ConsoleContext:
    """What every page needs: the store, the user, where files are, the latest config."""

    store: SqlStore
    user: ConsoleUser
    folders: Folders
    config: EventConfig | None
    cameras: list[str]

    def camera_config(self, name: str) -> CameraConfig | None:
        """The configuration of camera ``name``, None when the store's config lacks it."""
        if self.config is None:
            return None
        return next((camera for camera in self.config.cameras if camera.name == name), None)

    def attempt(self, action: str, target: str) -> bool:
        """True when the user may make this change; otherwise show and log the refusal."""
        try:
            require_change_right(self.user, action)
        except AccessDenied as refusal:
            self.store.log_action(
                self.user.name or "anonymous", "denied", target, {"attempted": action}
            )
            st.error(f"Refused: {refusal}. Ask an operator.")
            return False
        return True

    def actor(self, typed_name: str = "") -> str:
        """The name to log an action under: the logged-in user, else the name typed with the
        action, else the name given in the sidebar of the open console ("" when none)."""
        if self.user.authenticated:
            return self.user.name
        return typed_name.strip() or str(st.session_state.get(OPERATOR_NAME_KEY, "")).strip()


@st.cache_resource(show_spinner=False)
def shared_store(target: str) -> SqlStore:
    """One store connection per server process, shared by every operator's session (the store
    serialises its own transactions)."""
    return open_store(target)


def build_context(store: SqlStore, folders: Folders) -> ConsoleContext | None:
    """The session's context, or None while a login is still needed (the form is shown)."""
    user = session_user(store)
    if user is None:
        return None
    config = event_config(store)
    return ConsoleContext(store, user, folders, config, camera_names(store, config))


def session_user(store: SqlStore) -> ConsoleUser | None:
    """The logged-in user; everybody acts as an operator when the store names no users."""
    if not store.users():
        return OPEN_ACCESS
    user = st.session_state.get(_USER_KEY) or _resumed(store)
    if user is not None:
        # Roles are read again on every run: a demoted or removed user loses rights at once.
        record = store.user(user.name)
        if record is not None:
            st.session_state[_USER_KEY] = user
            _keep_cookie(store, record.name, record.password_hash)
            return ConsoleUser(record.name, record.role)
        log_out()
    _forget_cookie()
    _login_form(store)
    return None


def _resumed(store: SqlStore) -> ConsoleUser | None:
    """The user of a valid session cookie (a reload, a new tab), None without one or after
    logging out in this session."""
    if st.session_state.get(_LOGGED_OUT_KEY):
        return None
    try:
        token = st.context.cookies.get(COOKIE)
    except Exception:  # no browser context (bare script runs)
        token = None
    if not token:
        return None
    secret = load_secret(store.folder)
    name = read_token(token, _password_hash_of(store), secret)
    record = store.user(name) if name else None
    if record is None:
        return None
    store.log_action(record.name, "session_resumed", "console", {"role": record.role})
    st.session_state[_TOKEN_KEY] = token
    return ConsoleUser(record.name, record.role)


def _password_hash_of(store: SqlStore):
    def lookup(name: str) -> str | None:
        record = store.user(name)
        return None if record is None else record.password_hash

    return lookup


def _keep_cookie(store: SqlStore, name: str, password_hash: str) -> None:
    """Write the signed session cookie once per session (a zero-height script)."""
    token = st.session_state.get(_TOKEN_KEY)
    if token is None:
        token = make_token(name, password_hash, load_secret(store.folder))
        st.session_state[_TOKEN_KEY] = token
    cookie = f"{COOKIE}={token}; path=/; max-age={int(LIFETIME_S)}; SameSite=Strict"
    _run_js(f"window.parent.document.cookie = {json.dumps(cookie)};")


def _forget_cookie() -> None:
    if st.session_state.get(_LOGGED_OUT_KEY):
        _run_js(f"window.parent.document.cookie = {json.dumps(COOKIE + '=; path=/; max-age=0')};")


def _run_js(code: str) -> None:
    with st.sidebar:
        run_js(code)


def log_in(store: SqlStore, name: str, password: str) -> ConsoleUser:
    """Check a name and password against the store's users; failures are audit-logged.

    Raises:
        AccessDenied: unknown user or wrong password (the message does not say which).
    """
    record = store.user(name.strip())
    if record is None or not password or not verify_password(password, record.password_hash):
        store.log_action(name.strip() or "anonymous", "login_failed", "console")
        raise AccessDenied("unknown user or wrong password")
    store.log_action(record.name, "login", "console", {"role": record.role})
    return ConsoleUser(record.name, record.role)


def log_out(store: SqlStore | None = None) -> None:
    """Forget the session's user and its cookie (the login form shows on the next run); with
    ``store``, the logout is written to the audit log."""
    user = st.session_state.pop(_USER_KEY, None)
    st.session_state.pop(_TOKEN_KEY, None)
    st.session_state[_LOGGED_OUT_KEY] = True
    if store is not None and user is not None:
        store.log_action(user.name, "logout", "console")


def _login_form(store: SqlStore) -> None:
    st.title("crowdwatch console")
    with st.form("login"):
        name = st.text_input("User name")
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Log in", type="primary")
    if not submitted:
        return
    try:
        st.session_state[_USER_KEY] = log_in(store, name, password)
        st.session_state.pop(_LOGGED_OUT_KEY, None)
    except AccessDenied as failure:
        st.error(f"Login refused: {failure}.")
        return
    st.rerun()
