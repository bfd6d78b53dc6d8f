"""The store on SQLite and on a real PostgreSQL server: the same behaviour on both."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest
from pgserver import fresh_database_url

from crowdwatch.alerts import AlertEngine, AlertRule
from crowdwatch.config import load_config
from crowdwatch.metrics import LineMetrics, ZoneMetrics
from crowdwatch.store import (
    CameraHealth,
    MetricSample,
    RecordingEntry,
    Retention,
    StoreAlertSink,
    StoreError,
    StoreMetricsWriter,
    WallClock,
    open_store,
)
from crowdwatch.types import Level

T0 = 1_750_000_000.0


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    url = str(tmp_path / "store.db") if request.param == "sqlite" else fresh_database_url()
    opened = open_store(url)
    yield opened
    opened.close()


def _alert_events(engine: AlertEngine, counts: list[float], start: int = 0):
    events = []
    for second, count in enumerate(counts, start=start):
        events += engine.update("gate/north", float(second), {"count": count})
    return events


def _engine() -> AlertEngine:
    rule = AlertRule(metric="count", levels={"warning": 10}, latch_s=1, clear_latch_s=1)
    return AlertEngine({"gate/north": [rule]})


def test_metrics_time_series_and_latest(store) -> None:
    samples = [
        MetricSample("gate", zone, T0 + i, {"count": float(i), "density": i / 10, "flow_in": 2.0})
        for i in range(10)
        for zone in ("north", "south")
    ]
    assert store.write_metrics(samples) == 20
    series = store.metrics("gate", "north", start=T0 + 2, end=T0 + 5)
    assert [s.time - T0 for s in series] == [2, 3, 4, 5]
    assert series[0].values == {
        "count": 2.0,
        "density": 0.2,
        "occupancy": None,
        "area_m2": None,
        "flow_in": 2.0,
    }
    latest = store.latest_metrics("gate")
    assert [(s.zone, s.time - T0) for s in latest] == [("north", 9), ("south", 9)]
    # An older sample written late does not replace the latest one.
    store.write_metrics([MetricSample("gate", "north", T0 - 50, {"count": 99.0})])
    assert store.latest_metrics("gate")[0].value("count") == 9.0
    buckets = store.metric_series("gate", "north", "count", bucket_s=5)
    assert [v for _, v in buckets][-2:] == [pytest.approx(2.0), pytest.approx(7.0)]


def test_metrics_writer_takes_pipeline_records_and_line_records(store) -> None:
    writer = StoreMetricsWriter(store, WallClock(T0))
    zone = ZoneMetrics(
        camera="gate", zone="north", frame_index=7, time_s=1.5, count=12.0, area_m2=10.0,
        density=1.2, level=Level.ADVISORY,
    )  # fmt: skip
    line = LineMetrics(
        camera="gate", line="door", frame_index=7, time_s=1.5, length_m=2.0, flow_in=1.0,
        flow_out=0.5, flow_rate=1.5, crossed_in=3, crossed_out=1,
    )  # fmt: skip
    assert writer.write([zone, line]) == 2
    stored = {s.kind: s for s in store.latest_metrics("gate")}
    assert stored["zone"].time == T0 + 1.5 and stored["zone"].level == "advisory"
    assert stored["zone"].frame_index == 7 and stored["zone"].value("density") == 1.2
    assert stored["line"].zone == "door" and stored["line"].value("crossed_in") == 3.0


def test_bad_samples_are_refused_with_the_reason(store) -> None:
    with pytest.raises(ValueError, match="non-finite time"):
        store.write_metrics([MetricSample("gate", "north", float("nan"), {})])
    with pytest.raises(ValueError, match="camera and a zone"):
        store.write_metrics([MetricSample("", "north", T0, {})])


def test_alerts_from_a_real_engine_open_close_and_keep_acknowledgement(store) -> None:
    engine = _engine()
    sink = StoreAlertSink(store, WallClock(T0))
    for event in _alert_events(engine, [2, 12, 12, 12, 12]):
        sink.emit(event)
    (active,) = store.active_alerts()
    assert active.level == "warning" and active.camera == "gate" and active.zone == "north"
    assert active.opened == pytest.approx(T0 + 2)
    action = store.acknowledge(active.id, "maria", "stewards sent", time_s=T0 + 3.5)
    assert action.operator == "maria"
    with pytest.raises(ValueError, match="already acknowledged by 'maria'"):
        store.acknowledge(active.id, "tom")
    with pytest.raises(KeyError):
        store.acknowledge("nope", "tom")
    # The engine never heard of the acknowledgement: closing must not erase it.
    for event in _alert_events(engine, [12] * 5 + [1, 1, 1, 1], start=5):
        sink.emit(event)
    assert store.active_alerts() == []
    (closed,) = store.alerts(active=False)
    assert closed.acknowledged_by == "maria" and closed.acknowledged_note == "stewards sent"
    assert closed.closed is not None and closed.peak == 12
    assert store.alerts(camera="gate", level="critical") == []
    assert store.alerts(start=T0 + 100) == []
    assert [a.action for a in store.alert_actions(closed.id)] == ["acknowledged"]
    assert store.audit_log(actor="maria")[0].target == f"alert:{closed.id}"


def test_camera_health_and_gaps(store) -> None:
    for when, state in [
        (0, "starting"),
        (1, "live"),
        (5, "reconnecting"),
        (6, "reconnecting"),
        (9, "live"),
        (20, "stalled"),
    ]:
        store.set_health(CameraHealth("gate", state, 2.0, 2.0, 10, 3, T0 + when, updated=T0 + when))
    (health,) = store.health("gate")
    assert health.state == "stalled" and health.skipped_frames == 3
    assert [e.state for e in store.camera_events("gate")] == [
        "starting",
        "live",
        "reconnecting",
        "live",
        "stalled",
    ]
    gaps = store.gaps("gate")
    assert [(g.start - T0, None if g.end is None else g.end - T0) for g in gaps] == [
        (5, 9),
        (20, None),
    ]
    with pytest.raises(ValueError, match="unknown camera state"):
        store.set_health(CameraHealth("gate", "sleeping"))


def test_config_versions_record_who_changed_what(store, sample_config_path: Path) -> None:
    config = load_config(sample_config_path)
    first = store.save_config(config, author="setup", time_s=T0)
    assert first.version >= 1 and store.latest_config().config == first.config
    assert store.save_config(config, author="again").version == first.version  # unchanged
    data = config.model_dump(mode="json")
    data["cameras"][0]["zones"][1]["alerts"][0]["levels"]["warning"]["threshold"] = 5
    second = store.save_config(data, author="maria", note="earlier warning", time_s=T0 + 60)
    (change,) = store.config_changes(since_version=first.version)
    assert change.version == second.version and change.author == "maria"
    assert change.path == "cameras[plaza].zones[crossing].alerts[0].levels.warning.threshold"
    assert (change.old, change.new) == (4.0, 5)
    assert [v.version for v in store.config_versions()] == [first.version, second.version]
    assert store.config_version(first.version).config == first.config
    with pytest.raises(KeyError):
        store.config_version(999)


def test_recording_index_users_and_retention(store) -> None:
    for minute in range(3):
        store.add_recording(
            RecordingEntry(
                "gate",
                "segment",
                T0 + 60 * minute,
                T0 + 60 * minute + 60,
                f"gate/seg{minute}.mp4",
                1000,
            )
        )
    store.add_recording(RecordingEntry("gate", "snapshot", T0 + 70, T0 + 70, "gate/h.png", 10))
    found = store.recordings("gate", start=T0 + 65, end=T0 + 100)
    assert [r.path for r in found] == ["gate/seg1.mp4", "gate/h.png"]
    store.set_recording_status("gate/seg1.mp4", "corrupt")
    assert store.recordings("gate", kind="segment")[1].status == "corrupt"
    assert store.recorded_bytes("gate") == 3010
    store.remove_recording("gate/seg0.mp4")
    assert store.recorded_bytes() == 2010

    store.set_user("maria", "operator", "scrypt$abc")
    store.set_user("maria", "viewer", "scrypt$def")
    assert [(u.name, u.role, u.password_hash) for u in store.users()] == [
        ("maria", "viewer", "scrypt$def")
    ]
    with pytest.raises(ValueError, match="unknown role"):
        store.set_user("x", "admin", "h")

    store.write_metrics([MetricSample("gate", "north", T0 - 40 * 86400, {"count": 1.0})])
    store.write_metrics([MetricSample("gate", "north", T0, {"count": 2.0})])
    deleted = store.prune(Retention(metrics_days=30), now=T0)
    assert deleted["metrics"] == 1 and len(store.metrics("gate")) == 1


def test_sqlite_url_forms_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b.db"
    open_store(f"sqlite:///{path}").close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(StoreError, match="unknown store URL"):
        open_store("mysql://x/y")
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL"):
        open_store("postgresql://nobody:secret@127.0.0.1:1/none")


def _write_and_die(path: str, count: int) -> None:
    import os

    store = open_store(path)
    for i in range(count):
        store.write_metrics([MetricSample("gate", "north", T0 + i, {"count": float(i)})])
    os._exit(0)  # no close, no clean-up: like a crash


def test_committed_writes_survive_a_process_that_never_closes(tmp_path: Path) -> None:
    path = str(tmp_path / "crash.db")
    process = multiprocessing.get_context("spawn").Process(target=_write_and_die, args=(path, 50))
    process.start()
    process.join(60)
    store = open_store(path)
    assert len(store.metrics("gate")) == 50


@pytest.fixture
def sample_config_path() -> Path:
    return Path(__file__).resolve().parents[1] / "sample_videos" / "pets2009_s2l1.yaml"


def test_analyze_fills_a_store_the_console_can_read(tmp_path: Path, sample_clip: Path) -> None:
    from crowdwatch.pipeline import AnalysisOptions, analyze

    config = load_config(sample_clip.with_suffix(".yaml"))
    # A low count threshold so that the real clip raises an alert with a snapshot.
    data = config.model_dump(mode="json")
    data["cameras"][0]["zones"][0]["alerts"] = [
        {"metric": "count", "latch_s": 0.5, "levels": {"advisory": 1}}
    ]
    config = type(config).model_validate(data)
    out = tmp_path / "run"
    options = AnalysisOptions(every=4, max_frames=30, write_video=False, progress=False)
    summary = analyze(
        None, config, out, options, store=out / "crowdwatch.db", record=out / "recordings"
    )
    store = open_store(out / "crowdwatch.db")
    samples = store.metrics("plaza", kind="zone")
    assert len(samples) == summary.frames_analysed * 2
    assert {(s.kind, s.zone) for s in store.latest_metrics("plaza")} == {
        ("zone", "road"),
        ("zone", "crossing"),
        ("line", "walkway"),
    }
    assert store.latest_metrics("plaza")[0].value("crossed_in") is not None
    (health,) = store.health()
    assert health.state == "stopped" and health.analysed_frames == summary.frames_analysed
    (alert,) = store.alerts(camera="plaza", zone="road")
    assert (out / alert.snapshot).is_file()  # relative to the store's folder
    assert samples[0].time <= alert.opened <= samples[-1].time
    assert store.latest_config().config["cameras"][0]["name"] == "plaza"
    # The analysed frames were recorded too, and replay with their heat maps.
    from crowdwatch.recording import Replay

    replayed = list(Replay(store, out / "recordings", "plaza", samples[0].time, samples[-1].time))
    assert len(replayed) == summary.frames_analysed and replayed[0].heat is not None
