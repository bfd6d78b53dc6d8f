"""Issue 13: a console operators trust in a control room, under ``streamlit.testing`` on the
real recorded store (``fill_console_store``): one level on every panel, the alert bar on every
page, acknowledging that never goes silently wrong, sessions, Setup that forgives, Review that
shows the heat of the frame, and a Camera page an operator reads."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pyarrow
import pytest
from test_console_pages import (  # noqa: F401  (shared fixtures)
    assert_clean,
    console_store,
    log_in,
    open_page,
    store_copy,
    store_with_users,
)

from crowdwatch.annotate.draw import LEVEL_COLOURS
from crowdwatch.config.schema import EstimatorConfig
from crowdwatch.console.alertbar import bar_html, situation
from crowdwatch.console.condensed import CALM_FACTOR, busy_spans, condensed_step
from crowdwatch.console.data import console_folders, event_config
from crowdwatch.console.levels import Situation, attention_order
from crowdwatch.console.pictures import (
    _heat_for,
    alert_snapshot,
    compose,
    contrast_scale,
    heat_of,
    read_image,
    segment_frame,
)
from crowdwatch.console.report import ReviewReport, render_report_html
from crowdwatch.console.sessions import load_secret, make_token, read_token
from crowdwatch.store import MetricSample, open_store


def _alert(store, alert_id: str, zone: str, level: str, opened: float, closed=None) -> None:
    store.upsert_alert(
        {
            "id": alert_id, "camera": "plaza", "zone": zone, "rule": "count", "metric": "count",
            "level": level, "value": 5.0, "peak": 5.0, "start_s": opened, "opened_s": opened,
            "end_s": closed, "closed_s": closed,
        }
    )  # fmt: skip


def _bar(app) -> str:
    return next(md.value for md in app.markdown if "cw-alert-bar" in md.value)


# -- one truth ----------------------------------------------------------------------------------


def test_one_level_on_badge_table_outline_and_bar(
    store_copy: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An alert open on 'crossing' while its latest sample says normal (the live wall's
    disagreement): badge, table, outline and bar all say WARNING."""
    with open_store(store_copy) as store:
        crossing = next(s for s in store.latest_metrics("plaza") if s.zone == "crossing")
        assert crossing.level == "normal"
        _alert(store, "x-crossing", "crossing", "warning", crossing.time - 5)
        now = situation(store)
    assert now.zone_level("plaza", "crossing") == "warning"
    assert now.camera_level("plaza") == "warning" and now.level == "warning"
    app = open_page(store_copy, "live", monkeypatch)
    assert_clean(app)
    table = next(md.value for md in app.markdown if "| crossing |" in md.value)
    assert "| crossing |" in table and "WARNING" in table.split("| crossing |")[1].split("\n")[0]
    assert ":orange-badge[WARNING]" in [md.value for md in app.markdown]
    assert "cw-level-warning" in _bar(app) and "data-count='2'" in _bar(app)
    # The outline on the frame is drawn from the same levels.
    with open_store(store_copy) as store:
        config = event_config(store).cameras[0]
        blank = np.zeros((576, 768, 3), np.uint8)
        levels = {zone: level for (_, zone), level in now.targets.items()}
        image = compose(store, "plaza", console_folders(store, [], {}), blank, crossing.time,
                        config, levels=levels, heat_note="")  # fmt: skip
    # the middle of crossing's first edge, (430,190)-(640,170)
    assert tuple(int(v) for v in image[180, 535]) == LEVEL_COLOURS["warning"]


def test_a_rising_level_without_an_alert_is_not_called_normal() -> None:
    sample = MetricSample("plaza", "road", 10.0, {"count": 6.0}, level="advisory")
    now = Situation.of([sample], [])
    html = bar_html(now, clock=11.0)
    assert "ADVISORY" in html and "No active alerts" not in html
    assert now.title() == "ADVISORY · crowdwatch"


def test_history_never_says_open_for_a_closed_alert(
    store_copy: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with open_store(store_copy) as store:
        for alert in store.active_alerts():
            record = dict(alert.record, closed_s=alert.updated, end_s=alert.updated)
            store.upsert_alert(record)
    app = open_page(store_copy, "alerts", monkeypatch)
    assert_clean(app)
    assert any("No active alerts" in m.value for m in app.success)
    history = app.dataframe[0].value
    assert not history["open"].any()
    # The engine's level of road is still advisory: the bar says so, with no alert counted.
    assert "data-count='0'" in _bar(app) and "no alert yet" in _bar(app)


# -- the alert bar ------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["live", "camera", "alerts", "setup", "review"])
def test_the_alert_bar_is_on_every_page(
    console_store: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    page: str,
) -> None:
    app = open_page(console_store, page, monkeypatch)
    assert_clean(app)
    bar = _bar(app)
    assert "1 ACTIVE ALERT" in bar and "cw-level-advisory" in bar and "plaza/road" in bar
    assert any(b.label == "Acknowledge" and "ack-bar-" in b.proto.form_id for b in app.button)


def test_the_bar_lists_the_oldest_unacknowledged_first_and_escapes_names() -> None:
    def alert(alert_id, opened, by=None, zone="z"):
        from crowdwatch.store import StoredAlert

        return StoredAlert(alert_id, "cam", zone, "count", "count", "warning", 1.0, 1.0,
                           opened, opened, None, None, by, None, None, None, opened)  # fmt: skip

    alerts = [alert("new", 30.0), alert("acked", 5.0, by="maria"), alert("old", 10.0)]
    assert [a.id for a in attention_order(alerts)] == ["old", "new", "acked"]
    # A newer alert goes to the end: the cards an operator works on never move.
    later = attention_order([*alerts, alert("newest", 40.0)])
    assert [a.id for a in later][:2] == ["old", "new"]
    html = bar_html(Situation.of([], [alert("h", 1.0, zone="<script>x</script>")]), clock=2.0)
    assert "<script>x" not in html and "&lt;script&gt;" in html
    assert Situation.of([], alerts).title() == "(3) WARNING · crowdwatch"


def test_acknowledging_from_the_wall(
    store_copy: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with open_store(store_copy) as store:
        alert = store.active_alerts()[0]
    app = open_page(store_copy, "live", monkeypatch)
    # A new alert arrives while the operator types: the wall's form stays where it is.
    with open_store(store_copy) as store:
        _alert(store, "x-new", "crossing", "critical", time.time())
    app.text_input(key=f"wall-who-{alert.id}").input("maria")
    app.text_input(key=f"wall-note-{alert.id}").input("stewards at the road")
    next(b for b in app.button if b.proto.form_id == f"ack-wall-{alert.id}").click().run()
    assert_clean(app)
    assert any("Acknowledgement by maria saved" in m.value for m in app.success)
    with open_store(store_copy) as store:
        assert store.alert(alert.id).acknowledged_by == "maria"
        assert store.alert(alert.id).acknowledged_note == "stewards at the road"
        assert not store.alert("x-new").acknowledged


def test_acknowledging_from_the_bar(
    store_copy: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with open_store(store_copy) as store:
        alert = store.active_alerts()[0]
    app = open_page(store_copy, "camera", monkeypatch)
    app.text_input(key=f"bar-who-{alert.id}").input("ana")
    next(b for b in app.button if b.proto.form_id == f"ack-bar-{alert.id}").click().run()
    assert_clean(app)
    with open_store(store_copy) as store:
        assert store.alert(alert.id).acknowledged_by == "ana"


def test_a_failed_acknowledgement_is_shown_not_lost(
    store_copy: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from crowdwatch.store import SqlStore

    def broken(self, *args, **kwargs):
        raise RuntimeError("database is locked")

    with open_store(store_copy) as store:
        alert = store.active_alerts()[0]
    app = open_page(store_copy, "alerts", monkeypatch)
    monkeypatch.setattr(SqlStore, "acknowledge", broken)
    app.text_input(key=f"who-{alert.id}").input("maria")
    next(b for b in app.button if b.proto.form_id == f"ack-{alert.id}").click().run()
    assert any("NOT saved" in e.value and "database is locked" in e.value for e in app.error)


# -- sessions -----------------------------------------------------------------------------------


def test_session_tokens_are_signed_and_expire(tmp_path: Path) -> None:
    secret = load_secret(tmp_path, environ={})
    assert (tmp_path / "console-secret").stat().st_mode & 0o077 == 0
    assert load_secret(tmp_path, environ={}) == secret  # the same after a restart
    token = make_token("maria", "scrypt$a", secret, now=100.0, lifetime_s=60)
    assert read_token(token, lambda name: "scrypt$a", secret, now=150.0) == "maria"
    assert read_token(token, lambda name: "scrypt$a", secret, now=161.0) is None
    assert read_token(token, lambda name: "scrypt$a", b"other", now=150.0) is None
    forged = make_token("sam", "scrypt$a", b"guess", now=100.0, lifetime_s=60)
    assert read_token(forged, lambda name: "scrypt$a", secret, now=150.0) is None
    assert read_token("garbage", lambda name: "scrypt$a", secret) is None
    assert read_token(token, lambda name: None, secret, now=150.0) is None  # user removed


def test_logging_out_is_written_to_the_audit_log(
    store_with_users: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = log_in(open_page(store_with_users, "live", monkeypatch), "maria", "gate-7")
    app.button(key="logout").click().run()
    assert app.title[0].value == "crowdwatch console"
    with open_store(store_with_users) as store:
        assert [e.actor for e in store.audit_log(action="login")] == ["maria"]
        assert [e.actor for e in store.audit_log(action="logout")] == ["maria"]


# -- offline, legend, readable times ------------------------------------------------------------


def test_the_favicon_is_a_local_file_and_the_legend_is_on_wall_and_camera(
    console_store: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from crowdwatch.console.app import ICON

    assert ICON.is_file() and read_image(ICON) is not None
    for page in ("live", "camera"):
        app = open_page(console_store, page, monkeypatch)
        legend = next(md.value for md in app.markdown if "cw-density-legend" in md.value)
        assert "people/m²" in legend and "critical" in legend


def test_snapshot_headers_carry_a_readable_time(console_store: Path) -> None:  # noqa: F811
    with open_store(console_store) as store:
        folders = console_folders(store, [], {})
        picture = alert_snapshot(store, "plaza", folders)
        alert = next(a for a in store.alerts() if a.snapshot)
        raw = read_image(folders.alert_snapshot(alert.snapshot))
    assert picture is not None
    # The header strip is redrawn (the engine's says t=<epoch>s); the rest is the snapshot.
    assert not np.array_equal(picture.image[:26], raw[:26])
    assert np.array_equal(picture.image[30:], raw[30:])


# -- camera page --------------------------------------------------------------------------------


def test_the_camera_page_shows_four_charts_with_units_and_thresholds_quickly(
    console_store: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = open_page(console_store, "camera", monkeypatch)
    started = time.perf_counter()
    app.run()
    elapsed = time.perf_counter() - started
    assert_clean(app)
    charts = app.get("vega_lite_chart")
    titles = [md.value for md in app.markdown if md.value.startswith("**") and "**" in md.value]
    assert len(charts) == 4, titles
    for title in ("People", "People per m²", "Share of capacity (%)", "Flow (people per metre"):
        assert any(title in text for text in titles), titles
    density = next(c.proto for c in charts if '"title": "people per m' in c.proto.spec)
    drawn = set()
    for dataset in density.datasets:
        table = pyarrow.ipc.open_stream(dataset.data.data).read_pandas()
        if "threshold" in table:
            drawn |= set(table["threshold"])
    assert {2.0, 3.5, 5.0} <= drawn  # road's people/m² thresholds drawn on its chart
    assert "time (UTC)" in charts[0].proto.spec
    assert not any("Crossed_in" in text or "Length_m" in text for text in titles)
    assert elapsed < 3.0, f"the Camera page took {elapsed:.2f} s"
    app.toggle(key="camera-more-plaza").set_value(True).run()
    assert len(app.get("vega_lite_chart")) > 4


# -- setup --------------------------------------------------------------------------------------


def test_a_viewer_gets_no_enabled_edit_control_on_setup(
    store_with_users: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = log_in(open_page(store_with_users, "setup", monkeypatch), "sam", "watch-only")
    assert app.title[0].value == "Setup"
    editors = [*app.slider, *app.text_input, *app.text_area, *app.number_input, *app.checkbox]
    assert editors and all(widget.disabled for widget in editors)
    changing = [b for b in app.button if b.key != "logout"]
    assert changing and all(b.disabled for b in changing), [b.label for b in changing]
    assert not app.get("component_instance")  # no click-to-add-points picture


def test_deleting_a_zone_asks_first_and_can_be_undone(
    store_copy: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def zones():
        with open_store(store_copy) as store:
            return [z["name"] for z in store.latest_config().config["cameras"][0]["zones"]]

    app = open_page(store_copy, "setup", monkeypatch)
    app.text_input(key="operator-name").input("maria")
    app.button(key="zone-plaza-road-delete").click().run()
    assert zones() == ["road", "crossing"]  # asked, not deleted
    assert any("Delete zone road?" in w.value for w in app.warning)
    app.button(key="zone-plaza-road-delete-yes").click().run()
    assert_clean(app)
    assert zones() == ["crossing"]
    app.button(key="setup-undo").click().run()
    assert_clean(app)
    assert zones() == ["road", "crossing"]
    with open_store(store_copy) as store:
        assert store.latest_config().note.startswith("undo: deleted zone road")
        assert store.latest_config().author == "maria"


def test_line_thresholds_are_editable_with_units_and_need_a_name(
    store_copy: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with open_store(store_copy) as store:
        before = store.latest_config().version
    app = open_page(store_copy, "setup", monkeypatch)
    slider = app.slider(key="thr-plaza-line-walkway-0-warning")
    assert "people per metre per minute" in slider.label
    assert "people/m²" in app.slider(key="thr-plaza-road-1-warning").label
    slider.set_value(70.0)
    app.button(key="thr-plaza-save").click().run()
    assert any("enter your name" in e.value for e in app.error)
    with open_store(store_copy) as store:
        assert store.latest_config().version == before
    app.text_input(key="operator-name").input("maria")
    app.button(key="thr-plaza-save").click().run()
    assert_clean(app)
    with open_store(store_copy) as store:
        line = store.latest_config().config["cameras"][0]["lines"][0]
        assert line["alerts"][0]["levels"]["warning"]["threshold"] == 70.0


def test_an_earlier_config_version_can_be_restored(
    store_copy: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with open_store(store_copy) as store:
        first = store.latest_config()
        changed = dict(first.config, name="renamed")
        store.save_config(changed, author="test", note="rename")
    app = open_page(store_copy, "setup", monkeypatch)
    app.text_input(key="operator-name").input("maria")
    assert app.button(key="restore-go").disabled  # until confirmed
    app.checkbox(key="restore-sure").check().run()
    app.button(key="restore-go").click().run()
    assert_clean(app)
    with open_store(store_copy) as store:
        latest = store.latest_config()
        assert latest.config == first.config and latest.version == first.version + 2


# -- review -------------------------------------------------------------------------------------


def test_the_review_frames_heat_sits_on_the_people_in_it(console_store: Path) -> None:  # noqa: F811
    """On PETS frames the "now" heat (each recorded frame's own density) lies within the
    detected people's boxes (grown by half a box each way, as the heat is blurred) far more
    than the fading heat, which trails them."""
    from crowdwatch.estimators import make_estimator

    detector = make_estimator(EstimatorConfig(kind="ssd"))
    inside: dict[str, list[float]] = {"now": [], "fading": []}
    with open_store(console_store) as store:
        folders = console_folders(store, [], {})
        segments = store.recordings("plaza", kind="segment")
        for snapshot in store.recordings("plaza", kind="snapshot")[3:8]:
            segment = next(s for s in segments if s.start <= snapshot.start <= s.end)
            image, when = segment_frame(folders.recording(segment.path), segment, snapshot.start)
            boxes = detector.estimate(image).boxes
            mask = np.zeros(image.shape[:2], np.uint8)
            for x0, y0, x1, y1 in boxes:
                w, h = (x1 - x0) / 2, (y1 - y0) / 2
                cv2.rectangle(mask, (int(x0 - w), int(y0 - h)), (int(x1 + w), int(y1 + h)), 1, -1)
            for mode in inside:
                heat, _, label = heat_of(store, "plaza", folders, when, mode, half_life_s=3.0)
                shown = _heat_for(heat, image.shape[:2])
                inside[mode].append(float((shown * mask).sum() / shown.sum()))
            assert mask.mean() < 0.15  # the boxes cover a small part of the frame
    now, fading = np.mean(inside["now"]), np.mean(inside["fading"])
    print(f"heat inside the boxes: now {now:.2f}, fading {fading:.2f}")
    assert now >= 0.9 and now >= fading + 0.3, (inside, now, fading)


def test_review_shows_both_heat_maps_labelled(
    console_store: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = open_page(console_store, "review", monkeypatch)
    app.button(key="review-jump").click().run()
    captions = [image.proto.imgs[0].caption for image in app.image[:2]]
    assert "heat now (people in this frame)" in captions[0], captions
    assert "heat fading (where it has been crowded" in captions[1], captions


def test_dense_uncalibrated_heat_keeps_its_contrast() -> None:
    from crowdwatch.annotate import draw_heatmap

    heat = np.full((240, 320), 0.004, np.float32)
    heat[100:140, 100:180] = 0.02  # a denser knot inside a dense crowd
    frame = np.full((240, 320, 3), 128, np.uint8)
    fixed = draw_heatmap(frame, heat, 0.6)
    scaled = draw_heatmap(frame, heat, 0.6, people_scale=contrast_scale(heat))
    knot, crowd = (slice(110, 130), slice(120, 160)), (slice(10, 40), slice(10, 60))

    def contrast(image):
        return float(np.abs(image[knot].mean((0, 1)) - image[crowd].mean((0, 1))).sum())

    assert contrast(scaled) > 2 * contrast(fixed)


def test_condensed_review_plays_calm_periods_fast(
    console_store: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with open_store(console_store) as store:
        spans = busy_spans(store.metrics("plaza"), store.alerts(camera="plaza"))
    assert spans
    calm = spans[0][0] - 60
    assert condensed_step(calm, spans, 1.0) == CALM_FACTOR
    assert condensed_step(spans[0][0] + 0.5, spans, 1.0) == 1.0
    assert condensed_step(spans[0][0] - 2, spans, 1.0) == 2.0  # never skips into a busy span
    app = open_page(console_store, "review", monkeypatch)
    start = app.slider(key="review-position").value
    app.toggle(key="review-condensed").set_value(True)
    app.toggle(key="review-play").set_value(True).run()
    assert_clean(app)
    moved = (app.slider(key="review-position").value - start).total_seconds()
    busy = any(s <= start.timestamp() <= e for s, e in spans)  # noqa: F841
    assert moved >= 1
    assert any("Condensed" in c.value for c in app.caption)


def test_what_if_starts_from_the_thresholds_in_force_then(
    store_copy: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with open_store(store_copy) as store:
        config = store.latest_config().config
        crossing = config["cameras"][0]["zones"][1]
        levels = crossing["alerts"][0]["levels"]
        assert levels["advisory"]["threshold"] == 3
        for level, value in (("advisory", 3.5), ("warning", 5), ("critical", 7)):
            levels[level]["threshold"] = value  # changed after the recording
        store.save_config(config, author="test", note="later change")
    app = open_page(store_copy, "review", monkeypatch)
    assert_clean(app)
    assert app.slider(key="whatif-plaza/crossing-0-advisory").value == 3.0
    assert any("in force then: configuration version 1" in c.value for c in app.caption)


def test_the_report_has_no_nan_and_downloads_after_what_if(
    console_store: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = open_page(console_store, "review", monkeypatch)
    app.slider(key="whatif-plaza/crossing-0-advisory").set_value(1.0).run()
    assert_clean(app)
    button = next(d for d in app.get("download_button") if "report" in d.proto.label.lower())
    assert button.proto.url and "deferred" not in button.proto.url  # a stored file, not a callback
    from crowdwatch.console.charts import alerts_table, replayed_table, samples_table

    with open_store(console_store) as store:
        samples = samples_table(store.metrics("plaza"))
        alerts = alerts_table(store.alerts(camera="plaza"), now=time.time())
    page = render_report_html(
        ReviewReport("t", "plaza", 0.0, 1.0, samples, alerts, whatif=replayed_table([]))
    )
    assert "nan" not in page.replace("nano", "").lower().split("<svg")[0]
    assert "bbox" not in page and page.count("<svg") == 4


def test_a_hostile_level_from_the_store_cannot_reach_the_bars_markup() -> None:
    sample = MetricSample("cam", "z", 1.0, {}, level="'><img src=x onerror=alert(1)>")
    html = bar_html(Situation.of([sample], []), clock=2.0)
    assert "<img" not in html and "onerror=alert(1)>" not in html
