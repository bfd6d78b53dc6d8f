"""The console in a real browser: Debian's Chromium driven by Playwright against
``streamlit run app.py`` on a real recorded store. Opens every page (the alert bar and the tab
title on each, nothing fetched from outside), downloads the review report after a what-if
change, acknowledges from the Alerts page and from the wall while alerts arrive, sees every
panel change level together, stays logged in across a reload, finds no enabled edit control for
a viewer, and saves the screenshots the README shows (``docs/screenshots/``)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from crowdwatch.console.auth import hash_password
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
    "--autoplay-policy=no-user-gesture-required",
]

if not CHROMIUM.exists():
    pytest.skip(
        "needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)",
        allow_module_level=True,
    )
playwright = pytest.importorskip("playwright.sync_api", reason="needs the playwright package")

from console_server import running_console  # noqa: E402
from test_console_pages import console_store, store_copy  # noqa: E402, F401  (shared fixtures)


@pytest.fixture
def console_url(store_copy: Path, tmp_path: Path) -> Iterator[str]:  # noqa: F811
    with running_console(store_copy, tmp_path) as url:
        yield url


@pytest.fixture
def browser():
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def _settle(page) -> None:
    """Wait until Streamlit has finished its run and the pictures have loaded."""
    page.wait_for_function(
        "Array.from(document.images).every(image => image.complete)", timeout=30_000
    )
    page.wait_for_timeout(1500)


def _idle(page) -> None:
    """Wait until no script run is in progress (Streamlit's status widget is gone)."""
    page.wait_for_function(
        "!document.querySelector('[data-testid=stStatusWidget]')", timeout=60_000, polling=100
    )


def _open(page, url: str, title: str) -> None:
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_role("heading", name=title).first.wait_for(timeout=60_000)


def _bar(page):
    return page.locator(".cw-alert-bar").first


def _alert(store_path: Path, alert_id: str, zone: str, level: str) -> None:
    with open_store(store_path) as store:
        now = time.time()
        store.upsert_alert(
            {"id": alert_id, "camera": "plaza", "zone": zone, "rule": "count", "metric": "count",
             "level": level, "value": 6.0, "peak": 6.0, "start_s": now, "opened_s": now}
        )  # fmt: skip


def _local_only(urls: list[str]) -> list[str]:
    return [
        url for url in urls
        if urlparse(url).scheme not in ("data", "blob", "about")
        and urlparse(url).hostname not in ("127.0.0.1", "localhost")
    ]  # fmt: skip


def test_every_page_opens_and_an_alert_is_acknowledged_by_clicking(
    console_url: str,
    store_copy: Path,  # noqa: F811
    browser,
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    timings = {}
    for path, title in PAGES:
        started = time.perf_counter()
        _open(page, f"{console_url}/{path}", title)
        if path == "camera":  # the four charts an operator reads
            page.wait_for_function(
                "document.querySelectorAll('[data-testid=stVegaLiteChart] canvas,"
                " [data-testid=stVegaLiteChart] svg').length >= 4", timeout=60_000,
            )  # fmt: skip
            timings["camera"] = time.perf_counter() - started
        _bar(page).wait_for(timeout=30_000)  # the alert bar on every page
        assert _bar(page).get_attribute("data-count") == "1", path
        page.wait_for_function("document.title.startsWith('(1) ADVISORY')", timeout=10_000)
        _settle(page)
        if path == "review":  # scrub to the alert: the zone shows in its alert colour
            page.get_by_role("button", name="Jump to alert").click()
            page.wait_for_timeout(2500)
            _settle(page)
            # the two heat maps side by side, "now" and "fading", under the timeline
            page.locator("[data-testid=stImage]").first.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / f"{path or 'live'}.png"))
        if path == "review":
            _report_downloads_after_what_if(page)

    _open(page, f"{console_url}/alerts", "Alerts")
    _settle(page)
    page.screenshot(path=str(SHOTS / "alerts.png"))
    main = page.locator("[data-testid=stMain]")
    main.get_by_label("Your name").last.fill("maria")
    main.get_by_label("Note").last.fill("stewards sent to the road")
    main.get_by_role("button", name="Acknowledge").last.click()
    page.get_by_text("Acknowledgement by maria saved").wait_for(timeout=30_000)
    page.get_by_text("stewards sent to the road").first.wait_for(timeout=30_000)
    _settle(page)
    page.screenshot(path=str(SHOTS / "alerts-acknowledged.png"))

    assert not _local_only(requests), _local_only(requests)  # nothing fetched from outside
    print(f"Camera page in the browser: {timings['camera']:.2f} s to its four charts")
    assert timings["camera"] < 10.0  # first visit, shared CPUs; AppTest checks < 3 s per run
    with open_store(store_copy) as store:
        acknowledged = [alert for alert in store.alerts() if alert.acknowledged]
        assert [alert.acknowledged_by for alert in acknowledged] == ["maria"]
        assert acknowledged[0].acknowledged_note == "stewards sent to the road"
    for name in ("live", "camera", "setup", "review", "alerts", "alerts-acknowledged"):
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000, name


def _report_downloads_after_what_if(page) -> None:
    slider = page.locator("[data-testid=stSlider]").filter(has_text="advisory (people)").first
    slider.scroll_into_view_if_needed()
    thumb = slider.get_by_role("slider")
    thumb.focus()
    for _ in range(5):
        thumb.press("ArrowLeft")
    page.wait_for_timeout(1000)
    _idle(page)  # a click while the page is being redrawn is cancelled by the browser
    button = page.get_by_role("button", name="Printable report (HTML)")
    for _attempt in range(3):  # a rerun that starts during the click cancels that download
        _idle(page)
        button.scroll_into_view_if_needed()
        with page.expect_download(timeout=30_000) as download:
            button.click()
        if download.value.failure() is None:
            break
        page.wait_for_timeout(1000)
    assert download.value.failure() is None
    text = Path(download.value.path()).read_text("utf-8")
    assert "<h1>" in text and "With other thresholds" in text
    assert ">nan<" not in text


def test_levels_agree_and_the_wall_acknowledges_while_alerts_arrive(
    console_url: str,
    store_copy: Path,  # noqa: F811
    browser,
) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    _open(page, console_url, "Live wall")
    _settle(page)
    page.get_by_text("Sound for new warnings and criticals").click()  # turn the beep on
    with open_store(store_copy) as store:
        road = store.active_alerts()[0]
    # The engine raises a warning on 'crossing': every panel turns to WARNING together.
    _alert(store_copy, "browser-crossing", "crossing", "warning")
    page.wait_for_function(
        "document.querySelector('.cw-alert-bar')?.dataset.level === 'warning'", timeout=15_000
    )
    main = page.locator("[data-testid=stMain]")
    main.get_by_text("WARNING", exact=True).first.wait_for(timeout=15_000)  # the camera badge
    row = main.locator("tr", has_text="crossing")
    row.get_by_text("WARNING").wait_for(timeout=15_000)  # the zone table
    page.wait_for_function("document.title.startsWith('(2) WARNING')", timeout=10_000)
    page.wait_for_function("Number(document.body.dataset.cwBeeps || 0) >= 1", timeout=10_000)
    page.screenshot(path=str(SHOTS / "live-warning.png"))
    # Acknowledge the road alert from the wall while another alert arrives.
    main.get_by_role("button", name=f"Acknowledge {road.zone} {road.level.upper()}").click()
    dialog = page.locator("[data-testid=stPopoverBody]").last
    dialog.get_by_label("Your name").fill("maria")
    dialog.get_by_label("Note").fill("stewards at the road")
    _alert(store_copy, "browser-critical", "crossing", "critical")
    page.wait_for_timeout(2500)  # a refresh of the wall happens under the open form
    assert dialog.get_by_label("Note").input_value() == "stewards at the road"
    dialog.get_by_role("button", name="Acknowledge").click()
    page.get_by_text("Acknowledgement by maria saved").wait_for(timeout=30_000)
    with open_store(store_copy) as store:
        stored = store.alert(road.id)
        assert stored.acknowledged_by == "maria"
        assert stored.acknowledged_note == "stewards at the road"


def test_sessions_survive_a_reload_and_viewers_get_no_edit_control(
    store_copy: Path,  # noqa: F811
    tmp_path: Path,
    browser,
) -> None:
    with open_store(store_copy) as store:
        store.set_user("maria", "operator", hash_password("gate-7", cost=2**10))
        store.set_user("sam", "viewer", hash_password("watch-only", cost=2**10))
    with running_console(store_copy, tmp_path) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        _log_in(page, url, "maria", "gate-7")
        page.get_by_text("Logged in as").wait_for(timeout=30_000)
        page.reload(wait_until="domcontentloaded")
        page.get_by_role("heading", name="Live wall").first.wait_for(timeout=60_000)
        page.get_by_text("Logged in as").wait_for(timeout=30_000)
        page.get_by_role("button", name="Log out").click()
        page.get_by_role("button", name="Log in").wait_for(timeout=30_000)
        page.wait_for_function(  # the cookie is gone
            "!document.cookie.includes('crowdwatch_session=')", timeout=30_000
        )
        page.reload(wait_until="domcontentloaded")
        page.get_by_role("button", name="Log in").wait_for(timeout=30_000)  # logged out stays

        _log_in(page, url, "sam", "watch-only")
        _open(page, f"{url}/setup", "Setup")
        _settle(page)
        enabled = page.evaluate(_ENABLED_EDITORS_JS)
        assert enabled == [], enabled
        page.screenshot(path=str(SHOTS / "setup-viewer.png"))
    with open_store(store_copy) as store:
        actions = [entry.action for entry in reversed(store.audit_log())]
        assert actions.index("login") < actions.index("session_resumed")
        assert actions.index("session_resumed") < actions.index("logout")


def _log_in(page, url: str, name: str, password: str) -> None:
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_label("User name").fill(name)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Live wall").first.wait_for(timeout=60_000)
    page.wait_for_function(  # the signed session cookie is written
        "document.cookie.includes('crowdwatch_session=')", timeout=30_000
    )


# Controls of the page (not the sidebar, tabs or choosers of what to look at) a user could
# change something with.
_ENABLED_EDITORS_JS = """
() => {
  const main = document.querySelector('[data-testid=stMain]');
  const found = [];
  const skip = el => el.closest('[data-testid=stSelectbox]') || el.closest('[role=tablist]')
    || el.closest('.cw-alert-bar') || el.closest('[data-testid=stExpander] summary')
    || el.getAttribute('kind') === 'elementToolbar';  // a picture's full-screen button
  main.querySelectorAll('input, textarea, button, [role=slider]').forEach(el => {
    if (skip(el)) return;
    const off = el.disabled || el.getAttribute('aria-disabled') === 'true';
    if (!off && el.offsetParent !== null) found.push(el.outerHTML.slice(0, 120));
  });
  return found;
}
"""
