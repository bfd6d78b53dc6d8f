"""The console in a real browser: Debian's Chromium driven by Playwright against
``streamlit run app.py`` on a real recorded store. Opens every page, acknowledges an alert by
clicking, and saves the screenshots the README shows (``docs/screenshots/``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from crowdwatch.store import open_store

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[1]
# The README's pictures are refreshed with `make screenshots`; a plain test run keeps its
# screenshots out of the working tree.
SHOTS = Path(os.environ.get("CROWDWATCH_SCREENSHOTS", "/tmp/crowdwatch-screenshots"))
PAGES = [("", "Live wall"), ("camera", "Camera"), ("setup", "Setup"), ("review", "Review")]
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

if not CHROMIUM.exists():
    pytest.skip(
        "needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)",
        allow_module_level=True,
    )
playwright = pytest.importorskip("playwright.sync_api", reason="needs the playwright package")

from test_console_pages import console_store, store_copy  # noqa: E402, F401  (shared fixtures)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_up(url: str, server: subprocess.Popen, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"the console did not answer at {url} within {timeout_s:.0f} s")


@pytest.fixture
def console_url(store_copy: Path, tmp_path: Path) -> Iterator[str]:  # noqa: F811
    port = _free_port()
    command = [
        sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"),
        "--server.headless", "true", "--server.port", str(port),
        "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer",
        "--", "--store", str(store_copy),
    ]  # fmt: skip
    log = (tmp_path / "streamlit.log").open("w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, server)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _settle(page) -> None:
    """Wait until Streamlit has finished its run and the pictures have loaded."""
    page.wait_for_function(
        "Array.from(document.images).every(image => image.complete)", timeout=30_000
    )
    page.wait_for_timeout(1500)


def test_every_page_opens_and_an_alert_is_acknowledged_by_clicking(
    console_url: str,
    store_copy: Path,  # noqa: F811
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            for path, title in PAGES:
                page.goto(f"{console_url}/{path}", wait_until="domcontentloaded")
                page.get_by_role("heading", name=title).first.wait_for(timeout=60_000)
                _settle(page)
                if path == "review":  # scrub to the alert: the zone shows in its alert colour
                    page.get_by_role("button", name="Jump to alert").click()
                    page.wait_for_timeout(2500)
                    _settle(page)
                page.screenshot(path=str(SHOTS / f"{path or 'live'}.png"))

            page.goto(f"{console_url}/alerts", wait_until="domcontentloaded")
            page.get_by_role("heading", name="Alerts").first.wait_for(timeout=60_000)
            _settle(page)
            page.screenshot(path=str(SHOTS / "alerts.png"))
            page.get_by_label("Your name").first.fill("maria")
            page.get_by_label("Note").first.fill("stewards sent to the road")
            page.get_by_role("button", name="Acknowledge").first.click()
            page.get_by_text("Acknowledgement by maria saved").wait_for(timeout=30_000)
            page.get_by_text("stewards sent to the road").first.wait_for(timeout=30_000)
            _settle(page)
            page.screenshot(path=str(SHOTS / "alerts-acknowledged.png"))
        finally:
            browser.close()

    with open_store(store_copy) as store:
        acknowledged = [alert for alert in store.alerts() if alert.acknowledged]
        assert [alert.acknowledged_by for alert in acknowledged] == ["maria"]
        assert acknowledged[0].acknowledged_note == "stewards sent to the road"
    for name in ("live", "camera", "setup", "review", "alerts", "alerts-acknowledged"):
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000, name
