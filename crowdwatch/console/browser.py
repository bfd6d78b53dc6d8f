"""A script run in the operator's browser (tab title, sound, session cookie): a zero-height
same-origin iframe, so it reaches the console's page. Only the console's own code goes in."""

from __future__ import annotations

import streamlit as st


def run_js(code: str) -> None:
    """Run ``code`` (the console's own JavaScript, never text from the store) in the page."""
    st.iframe(f"<script>{code}</script>", height=1)
