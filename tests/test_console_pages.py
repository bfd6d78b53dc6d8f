"""The operator console's pages under ``streamlit.testing`` against a real store.

The store is filled by a short real analysis of the bundled PETS clip (SSD detector, 60 frames)
written through the store's own feed and the engine's recorder, as the live engine does
mid-event: alerts still open, video segments and heat-map snapshots indexed as recordings.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from crowdwatch import cli
from crowdwatch.config import load_config
from crowdwatch.config.schema import EstimatorConfig
from crowdwatch.console.auth import hash_password, verify_password
from crowdwatch.console.data import console_folders
from crowdwatch.console.pictures import alert_snapshot, picture_at
from crowdwatch.estimators import make_estimator
from crowdwatch.pipeline.camera import CameraAnalyzer
from crowdwatch.pipeline.health import HealthReporter
from crowdwatch.pipeline.outputs import build_run_outputs
from crowdwatch.recording import RecordingOptions
from crowdwatch.sources import open_source, sample_frames
from crowdwatch.store import CameraHealth, open_store
from crowdwatch.store.sinks import WallClock

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "app.py"
SAMPLE_CONFIG = REPO / "sample_videos" / "pets2009_s2l1.yaml"
FRAMES, EVERY = 60, 4


def fill_console_store(folder: Path) -> Path:
    """Analyse 60 frames of the sample clip into ``folder/crowdwatch.db`` as the live engine
    would (metrics, alerts with snapshots, health, recordings in ``folder/recordings``),
    leaving the alerts open; returns the store's path."""
    config = load_config(SAMPLE_CONFIG)
    camera = config.cameras[0]
    analyzer = CameraAnalyzer(camera, make_estimator(EstimatorConfig(kind="ssd")), config.heatmap)
    store_path = folder / "crowdwatch.db"
    store = open_store(store_path)
    store.save_config(config, author="test", note="console fixture")
    options = RecordingOptions(folder / "recordings", segment_s=10, fps=10 / EVERY,
                               snapshot_every_s=2)  # fmt: skip
    # The one path every run takes: metrics, alerts with snapshots, recording.
    outputs = build_run_outputs(
        config,
        camera,
        annotate=analyzer.annotate,
        clock=WallClock.starting_now(),
        folder=folder,
        store=store,
        recording=options,
    )
    health = HealthReporter(store, camera.name, target_fps=None)
    with open_source(camera.source) as source:
        for index, frame in enumerate(sample_frames(source, every=EVERY)):
            if index >= FRAMES:
                break
            outputs.keep(analyzer.process(frame))
            health.frame_analysed(outputs.clock.wall(frame.time_s))
    outputs.close()  # the alerts stay open in the store, as on a live engine
    health.report("live", force=True)
    store.close()
    return store_path


@pytest.fixture(scope="session")
def console_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared recorded store (built once per session)."""
    return fill_console_store(tmp_path_factory.mktemp("console"))


@pytest.fixture
def store_copy(console_store: Path, tmp_path: Path) -> Path:
    """A private copy of the recorded store (with its recordings) for tests that change it."""
    folder = tmp_path / "run"
    shutil.copytree(console_store.parent, folder)
    return folder / console_store.name


def open_page(store: Path, page: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("CROWDWATCH_STORE", str(store))
    app = AppTest.from_file(str(APP), default_timeout=60)
    app.query_params["page"] = page
    return app.run()


def assert_clean(app: AppTest) -> None:
    """No exception and no error message (the red active-alert banners are not errors)."""
    assert not app.exception, [e.value for e in app.exception]
    problems = [e.value for e in app.error if "active alert" not in e.value.lower()]
    assert not problems, problems


def test_the_recorded_store_holds_what_the_console_shows(console_store: Path) -> None:
    with open_store(console_store) as store:
        assert len(store.metrics("plaza", kind="zone")) == FRAMES * 2  # two zones
        assert len(store.metrics("plaza", kind="line")) == FRAMES - 1  # one line, from frame 2
        assert store.active_alerts(), "the short run should leave the road alert open"
        assert {entry.kind for entry in store.recordings("plaza")} == {"segment", "snapshot"}


@pytest.mark.parametrize(
    ("page", "title"),
    [
        ("live", "Live wall"),
        ("camera", "Camera"),
        ("alerts", "Alerts"),
        ("setup", "Setup"),
        ("review", "Review"),
    ],
)
def test_each_page_runs_on_the_recorded_store(
    console_store: Path, monkeypatch: pytest.MonkeyPatch, page: str, title: str
) -> None:
    app = open_page(console_store, page, monkeypatch)
    assert_clean(app)
    assert app.title[0].value == title
    # Every page shows the camera's picture; Setup's is the click-to-add-points component
    # when streamlit-image-coordinates is installed.
    clickable = page == "setup" and importlib.util.find_spec("streamlit_image_coordinates")
    pictures = app.get("component_instance") if clickable else app.image
    assert pictures, f"the {page} page should show a picture"


def test_live_wall_shows_zone_counts_and_the_open_alert(
    console_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_page(console_store, "live", monkeypatch)
    tables = " ".join(md.value for md in app.markdown)
    assert "| road |" in tables and "| crossing |" in tables
    bar = next(md.value for md in app.markdown if "cw-alert-bar" in md.value)
    assert "1 ACTIVE ALERT" in bar and "data-count='1'" in bar


def test_acknowledging_an_active_alert_stores_name_and_note(
    store_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_store(store_copy) as store:
        alert = store.active_alerts()[0]
    app = open_page(store_copy, "alerts", monkeypatch)
    app.text_input(key=f"who-{alert.id}").input("maria")
    app.text_input(key=f"note-{alert.id}").input("stewards sent to the road")
    next(b for b in app.button if b.proto.form_id == f"ack-{alert.id}").click().run()
    assert_clean(app)
    with open_store(store_copy) as store:
        stored = store.alert(alert.id)
        assert stored.acknowledged_by == "maria"
        assert stored.acknowledged_note == "stewards sent to the road"
        assert [a.operator for a in store.alert_actions(alert.id)] == ["maria"]
        assert store.audit_log(action="acknowledge")[0].actor == "maria"


def test_acknowledging_without_a_name_is_refused(
    store_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_store(store_copy) as store:
        alert = store.active_alerts()[0]
    app = open_page(store_copy, "alerts", monkeypatch)
    next(b for b in app.button if b.proto.form_id == f"ack-{alert.id}").click().run()
    assert any("name" in message.value for message in app.error)
    with open_store(store_copy) as store:
        assert not store.alert(alert.id).acknowledged


def test_saving_thresholds_writes_a_new_config_version(
    store_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_page(store_copy, "setup", monkeypatch)
    app.text_input(key="operator-name").input("maria")  # every change needs a name
    app.slider(key="thr-plaza-road-0-warning").set_value(9.0)
    app.button(key="thr-plaza-save").click().run()
    assert_clean(app)
    with open_store(store_copy) as store:
        config = store.latest_config()
        assert config.author == "maria"
        road = next(z for z in config.config["cameras"][0]["zones"] if z["name"] == "road")
        assert road["alerts"][0]["levels"]["warning"]["threshold"] == 9.0
        changed = [c.path for c in store.config_changes(since_version=config.version - 1)]
        assert any("road" in path and "warning" in path for path in changed)


def test_saving_a_new_zone_writes_it_to_the_config(
    store_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_page(store_copy, "setup", monkeypatch)
    app.selectbox(key="zone-choice-plaza").set_value("＋ new").run()
    key = "zone-plaza-＋ new"
    app.text_input(key="operator-name").input("maria")  # the open console's sidebar name
    app.text_input(key=f"{key}-name").input("gate")
    app.number_input(key=f"{key}-capacity").set_value(12)
    app.text_area(key=f"{key}-points").input("100, 300\n300, 300\n300, 450\n100, 450")
    app.button(key=f"{key}-save").click().run()
    assert_clean(app)
    with open_store(store_copy) as store:
        zones = store.latest_config().config["cameras"][0]["zones"]
        gate = next(z for z in zones if z["name"] == "gate")
        assert gate["capacity"] == 12
        assert [tuple(p) for p in gate["polygon"]] == [
            (100, 300),
            (300, 300),
            (300, 450),
            (100, 450),
        ]
        assert store.latest_config().author == "maria"


def test_a_self_intersecting_zone_is_refused_with_the_reason(
    store_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_store(store_copy) as store:
        before = store.latest_config().version
    app = open_page(store_copy, "setup", monkeypatch)
    app.selectbox(key="zone-choice-plaza").set_value("＋ new").run()
    key = "zone-plaza-＋ new"
    app.text_input(key=f"{key}-name").input("bowtie")
    app.text_area(key=f"{key}-points").input("0, 0\n100, 100\n100, 0\n0, 100")
    app.button(key=f"{key}-save").click().run()
    assert any("self-intersecting" in message.value for message in app.error)
    with open_store(store_copy) as store:
        assert store.latest_config().version == before


def test_review_what_if_with_a_lower_threshold_fires_more_alerts(
    console_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_page(console_store, "review", monkeypatch)
    baseline = next(m.value for m in [*app.info, *app.warning] if "would have fired" in m.value)
    app.slider(key="whatif-plaza/crossing-0-advisory").set_value(1.0).run()
    assert_clean(app)
    changed = next(m.value for m in [*app.info, *app.warning] if "would have fired" in m.value)
    assert int(changed.split()[0]) > int(baseline.split()[0])


def test_review_jump_to_alert_moves_the_position(
    console_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_page(console_store, "review", monkeypatch)
    start = app.slider(key="review-position").value
    assert (
        app.image[0].proto.imgs[0].caption.startswith("recording at")
    )  # a frame of the recorded segment
    app.button(key="review-jump").click().run()
    assert_clean(app)
    assert app.slider(key="review-position").value > start
    assert app.image[0].proto.imgs[0].caption.startswith("recording at")


# -- access -------------------------------------------------------------------------------------


@pytest.fixture
def store_with_users(store_copy: Path) -> Path:
    with open_store(store_copy) as store:
        store.set_user("maria", "operator", hash_password("gate-7", cost=2**10))
        store.set_user("sam", "viewer", hash_password("watch-only", cost=2**10))
    return store_copy


def log_in(app: AppTest, name: str, password: str) -> AppTest:
    app.text_input[0].input(name)
    app.text_input[1].input(password)
    return app.button[0].click().run()


def test_a_wrong_password_is_refused_and_logged(
    store_with_users: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_page(store_with_users, "live", monkeypatch)
    assert app.title[0].value == "crowdwatch console"  # the login form, nothing else
    log_in(app, "maria", "guess")
    assert any("refused" in message.value for message in app.error)
    assert not any(title.value == "Live wall" for title in app.title)
    with open_store(store_with_users) as store:
        failed = store.audit_log(action="login_failed")
        assert [entry.actor for entry in failed] == ["maria"]
    stored = open_store(store_with_users)
    try:
        assert "gate-7" not in str([user.password_hash for user in stored.users()])
    finally:
        stored.close()


def test_an_operator_logs_in_and_sees_the_pages(
    store_with_users: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = log_in(open_page(store_with_users, "alerts", monkeypatch), "maria", "gate-7")
    assert_clean(app)
    assert app.title[0].value == "Alerts"


def test_a_viewer_may_not_change_a_threshold_and_the_attempt_is_logged(
    store_with_users: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_store(store_with_users) as store:
        before = store.latest_config().version
    app = log_in(open_page(store_with_users, "setup", monkeypatch), "sam", "watch-only")
    assert app.title[0].value == "Setup"
    # A viewer's controls are read-only (a browser cannot change them at all) ...
    assert app.slider(key="thr-plaza-road-0-warning").disabled
    assert app.button(key="thr-plaza-save").disabled
    # ... and a change that reaches the server anyway is refused and logged.
    from crowdwatch.console.auth import ConsoleUser
    from crowdwatch.console.context import ConsoleContext

    with open_store(store_with_users) as store:
        ctx = ConsoleContext(store, ConsoleUser("sam", "viewer"), None, None, [])
        assert not ctx.attempt("change thresholds", "camera:plaza")
        assert store.latest_config().version == before
        denied = store.audit_log(action="denied")
        assert denied[0].actor == "sam"
        assert denied[0].detail["attempted"] == "change thresholds"


def test_a_viewer_may_not_acknowledge(
    store_with_users: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = log_in(open_page(store_with_users, "alerts", monkeypatch), "sam", "watch-only")
    acknowledge = [b for b in app.button if b.label == "Acknowledge"]
    assert acknowledge and all(b.disabled for b in acknowledge)  # on the Alerts page only
    assert not any("ack-bar-" in b.proto.form_id for b in app.button)  # none in the bar
    with open_store(store_with_users) as store:
        assert not any(alert.acknowledged for alert in store.alerts())


def test_the_console_says_how_to_fill_a_missing_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_page(tmp_path / "nothing.db", "live", monkeypatch)
    assert any("crowdwatch demo" in message.value for message in app.warning)
    assert not (tmp_path / "nothing.db").exists()


def test_pages_render_quickly(console_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A whole script run of the heaviest page stays well under the wall's refresh budget."""
    app = open_page(console_store, "camera", monkeypatch)
    started = time.perf_counter()
    app.run()
    assert time.perf_counter() - started < 5.0


def test_pictures_come_from_the_recording_at_the_asked_moment(console_store: Path) -> None:
    with open_store(console_store) as store:
        folders = console_folders(store, [], {})
        segments = store.recordings("plaza", kind="segment")
        middle = (segments[1].start + segments[1].end) / 2
        picture = picture_at(store, "plaza", folders, when=middle)
        assert picture is not None and picture.caption == "recording"
        assert abs(picture.time - middle) <= 0.4 + 1e-6  # frames every 0.4 s of video
        assert picture.image.shape == (576, 768, 3)
        assert picture_at(store, "plaza", folders, when=segments[0].start - 3600) is None
        first_alert = min(store.alerts(), key=lambda alert: alert.opened)
        snapshot = alert_snapshot(store, "plaza", folders, after=segments[0].start)
        assert snapshot is not None and snapshot.time == first_alert.opened


# -- command line -------------------------------------------------------------------------------


def test_crowdwatch_user_stores_only_a_hash(store_copy: Path) -> None:
    runner = CliRunner()
    added = runner.invoke(
        cli.app, ["user", "sam", "--role", "viewer", "--store", str(store_copy)],
        input="watch-only\nwatch-only\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    with open_store(store_copy) as store:
        user = store.user("sam")
        assert user.role == "viewer" and "watch-only" not in user.password_hash
        assert verify_password("watch-only", user.password_hash)
    refused = runner.invoke(cli.app, ["user", "x", "--role", "boss", "--store", str(store_copy)])
    assert refused.exit_code != 0 and "unknown role" in str(refused.exception)


def test_crowdwatch_console_serves_the_console(console_store: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        str(Path(sys.executable).with_name("crowdwatch")), "console",
        "--store", str(console_store), "--port", str(port), "--address", "127.0.0.1",
    ]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health") as answer:
                    assert answer.read() == b"ok"
                    break
            except OSError:
                assert server.poll() is None, server.stdout.read().decode()
                time.sleep(0.3)
        else:
            pytest.fail("crowdwatch console did not answer within 60 s")
    finally:
        server.terminate()  # the command became the server: nothing is left behind
        server.wait(timeout=15)


def test_a_demoted_operator_loses_the_right_to_change_at_once(
    store_with_users: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = log_in(open_page(store_with_users, "setup", monkeypatch), "maria", "gate-7")
    with open_store(store_with_users) as store:
        store.set_user("maria", "viewer", store.user("maria").password_hash)
    app.slider(key="thr-plaza-road-0-warning").set_value(9.0)
    app.button(key="thr-plaza-save").click().run()
    # The next run reads the role again: read-only controls, nothing saved.
    assert any("read-only" in message.value for message in app.info)
    assert app.button(key="thr-plaza-save").disabled
    with open_store(store_with_users) as store:
        assert store.latest_config().author == "test"


def test_review_names_the_gaps_in_a_cameras_coverage(
    store_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_store(store_copy) as store:
        health = store.health("plaza")[0]
        samples = store.metrics("plaza")
        middle = samples[len(samples) // 2].time
        for state, when in (("reconnecting", middle), ("live", middle + 3)):
            store.set_health(CameraHealth(**{**health.__dict__, "state": state, "updated": when}))
    app = open_page(store_copy, "review", monkeypatch)
    assert_clean(app)
    assert any("Not analysing from" in c.value and "reconnecting" in c.value for c in app.caption)


def test_review_plays_the_recording_forward(
    console_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_page(console_store, "review", monkeypatch)
    start = app.slider(key="review-position").value
    app.select_slider(key="review-speed").set_value(5)
    app.toggle(key="review-play").set_value(True).run()
    assert_clean(app)
    assert (app.slider(key="review-position").value - start).total_seconds() == 5
    assert app.image[0].proto.imgs[0].caption.startswith("recording at")
