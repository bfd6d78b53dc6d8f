"""The venue in the live engine: two cameras (crops of the PETS clip) fused onto one plan.

Each crop is a camera of its own, calibrated in the same ground frame (the sample config's MOT15
metres). The engine analyses both and fuses them about every 0.2 s: the venue zone's people go
to the store beside the cameras' zones, its alerts reach a webhook as CAP 1.2, and when one
camera stops the zone it half covers turns ``unknown`` within the stall time.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import pytest
from test_venue_pets import CROPS, HEIGHT, ZONE_M, _camera_configs
from webhook_receiver import WebhookReceiver

from crowdwatch.config import parse_config
from crowdwatch.engine import CaptureOptions, Engine, EngineOptions, WorkerOptions
from crowdwatch.recording import RecordingOptions
from crowdwatch.store import open_store
from crowdwatch.venue import CAP_NAMESPACE

FRAMES = {"left": 40, "right": 16}  # the right camera's recording is short
VENUE = "square"


@pytest.fixture(scope="module")
def crop_clips(sample_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("crops")
    capture = cv2.VideoCapture(str(sample_clip))
    images = [capture.read()[1] for _ in range(max(FRAMES.values()))]
    capture.release()
    clips = {}
    for name, (x0, x1) in CROPS.items():
        clips[name] = folder / f"{name}.avi"
        fourcc = cv2.VideoWriter_fourcc(*"MJPG")
        writer = cv2.VideoWriter(str(clips[name]), fourcc, 7, (x1 - x0, HEIGHT))
        for image in images[: FRAMES[name]]:
            writer.write(image[:, x0:x1])
        writer.release()
    return clips


def _event(clips: dict[str, Path], webhook: str) -> dict:
    _, crops = _camera_configs()
    cameras = [
        {**crops[name].model_dump(exclude_none=True), "source": str(clips[name]), "source_fps": 7}
        for name in CROPS
    ]
    # A camera zone with a low count rule: the left camera raises an advisory while it runs.
    cameras[0]["zones"] = [{
        "name": "walk", "polygon": [[0, 0], [480, 0], [480, 576], [0, 576]],
        "alerts": [{"metric": "count", "latch_s": 0, "clear_latch_s": 5,
                    "levels": {"advisory": 1}}],
    }]  # fmt: skip
    venue = {
        "name": VENUE,
        "cell_m": 0.25,
        "zones": [{
            "name": "plaza", "polygon_m": [list(p) for p in ZONE_M],
            "alerts": [{"metric": "count", "latch_s": 0, "clear_latch_s": 0.5,
                        "levels": {"advisory": 0.5}}],
        }],
        "anchor": {"lat": 51.4545, "lon": -0.9781, "bearing_deg": 30.0},
    }  # fmt: skip
    return {"cameras": cameras, "venue": venue, "webhooks": [{"url": webhook, "format": "cap"}]}


@dataclass(frozen=True)
class VenueRunResult:
    store: Path
    recordings: Path
    bodies: list[bytes]
    right_done: float | None


@pytest.fixture(scope="module")
def venue_run(
    crop_clips: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VenueRunResult]:
    """The engine on both crops, recorded (so the venue's live picture is kept). The left camera
    plays its file as a live camera (looped, at 2 frames/s); the right one replays its short
    recording frame for frame and stops. The tests run while the engine still runs."""
    folder = tmp_path_factory.mktemp("venue-run")
    store_path, recordings = folder / "venue.db", folder / "recordings"
    with WebhookReceiver() as receiver:
        event = _event(crop_clips, receiver.url)
        event["cameras"][0]["analysis_fps"] = 2
        store = open_store(store_path)
        recording = RecordingOptions(recordings, segment_s=10, quota_bytes=None)
        live = WorkerOptions(default_fps=None, stall_s=1.0, recording=recording)
        replay = replace(live, capture=CaptureOptions(every_frame=True))
        options = EngineOptions(worker=live, per_camera={"right": replay}, venue_every_s=0.2)
        engine = Engine(parse_config(event), store, options)
        try:
            engine.start()
            deadline, right_done = time.monotonic() + 240, None
            while time.monotonic() < deadline and right_done is None:
                done = {h.camera: h.analysed_frames for h in engine.status()}
                if done.get("right", 0) >= FRAMES["right"] and done.get("left", 0) >= 4:
                    right_done = time.time()  # its last frame is analysed: the camera stops
                time.sleep(0.1)
            time.sleep(2.5)  # venue ticks after the right camera stopped
            yield VenueRunResult(store_path, recordings, receiver.raw_bodies(), right_done)
        finally:
            engine.stop()
            store.close()


def test_two_cameras_fused_on_the_venue_and_a_stopped_one_makes_its_zone_unknown(
    venue_run: VenueRunResult, crop_clips: dict[str, Path], tmp_path: Path
) -> None:
    store_path, bodies, right_done = venue_run.store, venue_run.bodies, venue_run.right_done
    with open_store(store_path) as opened:
        venue_rows = opened.metrics(VENUE)
        alerts = opened.alerts(camera=VENUE)
    known = [s for s in venue_rows if s.value("unknown") == 0.0]
    unknown = [s for s in venue_rows if s.value("unknown") == 1.0]
    assert known and unknown, "the zone was known while both cameras ran, unknown after"
    assert all(s.value("covered_fraction") > 0.9 for s in known)
    assert max(s.value("count") for s in known) > 2  # people counted on the plan
    # Unknown within the stall time (1 s) of the right camera's last frame, plus one tick.
    first_unknown = min(s.time for s in unknown)
    assert right_done is not None and first_unknown - right_done <= 1.0 + 0.2 + 0.1
    assert all(s.level == "warning" for s in unknown)  # ranked like a warning, never normal
    # The venue zone's alert, as CAP 1.2 with its polygon in WGS84.
    assert alerts
    bodies = [body for body in bodies if f"{VENUE}/".encode() in body]  # the venue's alerts
    documents = [ElementTree.fromstring(body) for body in bodies]
    ns = {"cap": CAP_NAMESPACE}
    assert documents and all(doc.tag == f"{{{CAP_NAMESPACE}}}alert" for doc in documents)
    polygon = documents[0].find("cap:info/cap:area/cap:polygon", ns).text
    latitudes = [float(pair.split(",")[0]) for pair in polygon.split()]
    assert all(51.3 < lat < 51.6 for lat in latitudes)

    # The same messages from the store, by `crowdwatch alerts export --format cap`.
    import yaml
    from test_cli import crowdwatch

    config_path = tmp_path / "event.yaml"
    config_path.write_text(yaml.safe_dump(_event(crop_clips, "http://127.0.0.1:9/hook")))
    out = tmp_path / "cap"
    result = crowdwatch("alerts", "export", "--store", str(store_path), "--out", str(out),
                        "--config", str(config_path), "--camera", VENUE)  # fmt: skip
    assert result.returncode == 0, result.stderr
    files = sorted(out.glob("*.xml"))
    assert len(files) == len(bodies)  # as the webhook got them
    for path in files:
        root = ElementTree.parse(path).getroot()
        for field in ("identifier", "sender", "sent", "status", "msgType", "scope"):
            assert root.find(f"cap:{field}", ns).text, field
        info = root.find("cap:info", ns)
        for field in ("category", "event", "urgency", "severity", "certainty"):
            assert info.find(f"cap:{field}", ns).text, field
        assert info.find("cap:area/cap:polygon", ns) is not None


def test_config_check_names_a_venue_zone_no_camera_sees(
    crop_clips: dict[str, Path], tmp_path: Path
) -> None:
    import yaml

    from crowdwatch.pipeline.geometry import check_against_frames

    event = _event(crop_clips, "http://127.0.0.1:9/hook")
    assert check_against_frames(parse_config(event)) == []
    far = [[200.0, 200.0], [210.0, 200.0], [210.0, 210.0], [200.0, 210.0]]
    event["venue"]["zones"].append({"name": "car park", "polygon_m": far})
    event["venue"]["gates"] = [{"name": "north", "start_m": [300, 0], "end_m": [304, 0],
                                "width_m": 4.0}]  # fmt: skip
    problems = check_against_frames(parse_config(event))
    text = "\n".join(problems)
    assert "venue 'square'" in text and "car park" in text and "north" in text
    path = tmp_path / "event.yaml"
    path.write_text(yaml.safe_dump(event))
    from test_cli import crowdwatch

    result = crowdwatch("config", "check", str(path))
    assert result.returncode == 2 and "car park" in result.stderr


def test_the_venue_page_shows_the_plan_and_the_unknown_zone_in_a_real_browser(
    venue_run: VenueRunResult, tmp_path: Path
) -> None:
    """Chromium on ``streamlit run app.py``: the Venue page opens first, the zone the stopped
    camera half covered reads UNKNOWN (grey on the plan), the fused heat is drawn."""
    from console_server import running_console
    from test_console_browser import BROWSER_ARGS, CHROMIUM, SHOTS, playwright

    from crowdwatch.recording.venue_preview import read_venue_preview

    assert read_venue_preview(venue_run.recordings / VENUE) is not None
    SHOTS.mkdir(parents=True, exist_ok=True)
    with (
        running_console(
            venue_run.store, tmp_path, "--recordings", str(venue_run.recordings)
        ) as url,
        playwright.sync_playwright() as driver,
    ):
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            page.goto(url, wait_until="domcontentloaded")
            page.get_by_role("heading", name=f"Venue: {VENUE}").wait_for(timeout=60_000)
            page.get_by_text("UNKNOWN").first.wait_for(timeout=30_000)
            page.wait_for_function(
                "Array.from(document.images).some(i => i.complete && i.naturalWidth > 500)",
                timeout=30_000,
            )
            page.wait_for_timeout(1000)
            page.screenshot(path=str(SHOTS / "venue.png"))
        finally:
            browser.close()
    assert (SHOTS / "venue.png").stat().st_size > 10_000


def test_analyze_runs_the_venue_step_for_its_camera(tmp_path: Path) -> None:
    """``analyze`` of the (uncropped) sample camera with the venue: the same VenueRun the engine
    uses writes the venue zone to the store and its alerts beside the run's own."""
    import yaml

    from crowdwatch.alerts import read_alert_log
    from crowdwatch.paths import sample_config
    from crowdwatch.pipeline import AnalysisOptions, analyze

    event = yaml.safe_load(sample_config().read_text())
    camera = event["cameras"][0]
    camera["source"] = str(sample_config().parent / camera["source"])
    event["venue"] = _event({n: Path("x.avi") for n in CROPS}, "http://127.0.0.1:9/h")["venue"]
    options = AnalysisOptions(max_frames=12, write_video=False, progress=False)
    summary = analyze(None, parse_config(event), tmp_path / "out", options, store=tmp_path / "a.db")
    with open_store(tmp_path / "a.db") as store:
        rows = store.metrics(VENUE, run_id=summary.provenance["run_id"])
    assert len(rows) == 12 and all(row.value("unknown") == 0.0 for row in rows)
    assert all(row.value("covered_fraction") > 0.95 for row in rows)
    assert max(row.value("count") for row in rows) > 1
    venue_alerts = read_alert_log(tmp_path / "out" / "venue" / "alerts.jsonl")
    assert venue_alerts and venue_alerts[0]["camera"] == VENUE


def test_review_and_what_if_work_on_the_venue_zone(
    venue_run: VenueRunResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Review page lists the venue beside the cameras; its trends and what-if replay the
    venue zone's recorded people with other thresholds."""
    from test_console_pages import assert_clean, open_page

    app = open_page(venue_run.store, "review", monkeypatch)
    assert_clean(app)
    picker = app.selectbox(key="review-camera")
    assert VENUE in picker.options
    app = picker.set_value(VENUE).run()
    assert_clean(app)
    text = " ".join(element.value for element in app.markdown)
    assert f"{VENUE}/plaza" in text  # the venue zone's rule, ready for other thresholds
    summary = [info.value for info in (*app.info, *app.warning) if "would have fired" in info.value]
    assert summary, "what-if replayed the venue zone's samples"


def test_ray_camera_hosts_feed_the_venue(crop_clips: dict[str, Path], tmp_path: Path) -> None:
    """With ``--ray`` the engine asks each camera host for its newest frame at every tick."""
    ray = pytest.importorskip("ray")
    store = open_store(tmp_path / "ray.db")
    worker = WorkerOptions(default_fps=None, capture=CaptureOptions(every_frame=True))
    options = EngineOptions(
        worker=worker, venue_every_s=0.5, ray_address="local", ray_cameras_per_host=2,
        ray_cpus_per_host=1,
    )  # fmt: skip
    engine = Engine(parse_config(_event(crop_clips, "http://127.0.0.1:9/h")), store, options)
    try:
        engine.start()
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if any(s.value("unknown") == 0.0 for s in store.metrics(VENUE)):
                break
            time.sleep(0.5)
    finally:
        engine.stop()
        ray.shutdown()
        rows = store.metrics(VENUE)
        store.close()
    known = [row for row in rows if row.value("unknown") == 0.0]
    assert known and max(row.value("count") for row in known) > 1


def test_every_panel_shows_one_level_during_a_live_engine_run(
    venue_run: VenueRunResult, tmp_path: Path
) -> None:
    """Chromium on the console while the engine runs: the left camera's advisory is the same on
    the alert bar, the camera badge and the zone table; the worst level (the venue zone that is
    unknown, ranked as a warning) on the bar and in the tab title."""
    from console_server import running_console
    from test_console_browser import BROWSER_ARGS, CHROMIUM, playwright

    with open_store(venue_run.store) as store:
        assert any(alert.camera == "left" and alert.is_open for alert in store.active_alerts())
    arguments = ("--recordings", str(venue_run.recordings))
    with (
        running_console(venue_run.store, tmp_path, *arguments) as url,
        playwright.sync_playwright() as driver,
    ):
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/live", wait_until="domcontentloaded")
            page.get_by_role("heading", name="Live wall").first.wait_for(timeout=60_000)
            bar = page.locator(".cw-alert-bar")
            bar.get_by_text("left/walk").wait_for(timeout=30_000)
            assert "ADVISORY" in bar.locator("li", has_text="left/walk").inner_text()
            main = page.locator("[data-testid=stMain]")
            main.get_by_text("ADVISORY", exact=True).first.wait_for(timeout=15_000)  # badge
            main.locator("tr", has_text="walk").get_by_text("ADVISORY").wait_for(timeout=15_000)
            # The venue zone nobody fully watches ranks like a warning: the worst level, on the
            # bar and in the tab title alike.
            page.wait_for_function(
                "document.querySelector('.cw-alert-bar')?.dataset.level === 'warning'",
                timeout=15_000,
            )
            page.wait_for_function("/^\\(2\\) WARNING/.test(document.title)", timeout=15_000)
        finally:
            browser.close()
