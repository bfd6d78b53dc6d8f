"""Nothing recorded is lost: metrics and alerts wait in a local spool while the store is
read-only or full, and are written once it is back; webhook deliveries wait in the store's
outbox across a restart."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
import sqlalchemy.exc
from webhook_receiver import WebhookReceiver

from crowdwatch.alerts import WebhookSink, read_alert_log
from crowdwatch.alerts.records import AlertEvent, AlertRecord
from crowdwatch.config import load_config
from crowdwatch.paths import sample_config, sample_video
from crowdwatch.pipeline import AnalysisOptions, analyze
from crowdwatch.store import MetricSample, open_store
from crowdwatch.store import spool as spool_module
from crowdwatch.store.sinks import StoreMetricsWriter, WallClock
from crowdwatch.store.spool import StoreSpool
from crowdwatch.store.sql import SqlStore

READ_ONLY = "attempt to write a readonly database"
DISK_FULL = "database or disk is full"


def outage(message: str) -> Exception:
    return sqlalchemy.exc.OperationalError("INSERT ...", {}, sqlite3.OperationalError(message))


class Outage:
    """Makes a store's writes fail (read-only file, full disk) while ``down`` is set."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, message: str) -> None:
        self.down = False
        self.failures = 0
        for name in ("write_metrics", "upsert_alert"):
            original = getattr(SqlStore, name)

            def failing(store, *args, _original=original, **kwargs):
                if self.down:
                    self.failures += 1
                    raise outage(message)
                return _original(store, *args, **kwargs)

            monkeypatch.setattr(SqlStore, name, failing)


@pytest.mark.parametrize("message", [READ_ONLY, DISK_FULL])
def test_metrics_written_while_the_store_is_down_reach_it_once_it_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, message: str
) -> None:
    monkeypatch.setattr(spool_module, "RETRY_EVERY_S", 0.0)
    store = open_store(tmp_path / "store.db")
    broken = Outage(monkeypatch, message)
    spool = StoreSpool(tmp_path / "spool.jsonl")
    writer = StoreMetricsWriter(store, WallClock(0.0), spool=spool)

    def frame(t: float):
        return [MetricSample("gate", "all", 1e9 + t, {"count": t})]

    for t in range(30):
        broken.down = 10 <= t < 20
        assert spool.write(store, "metrics", frame(t)) is (t < 10 or t >= 20)
        if 10 <= t < 20:
            assert spool.pending == t - 9
            assert spool.problem and ("readonly" in spool.problem or "full" in spool.problem)
    writer.close()
    assert broken.failures >= 10
    assert [sample.values["count"] for sample in store.metrics("gate")] == list(range(30))
    assert not spool.path.exists() and spool.pending == 0
    store.close()


def test_a_spool_left_by_a_crash_is_written_by_the_next_run(tmp_path, monkeypatch) -> None:
    store = open_store(tmp_path / "store.db")
    broken = Outage(monkeypatch, DISK_FULL)
    broken.down = True
    first = StoreSpool(tmp_path / "spool.jsonl")
    first.write(store, "metrics", [MetricSample("gate", "all", 1e9, {"count": 3.0})])
    assert first.path.exists()
    broken.down = False
    second = StoreSpool(tmp_path / "spool.jsonl")  # a new process, the same file
    second.write(store, "metrics", [MetricSample("gate", "all", 1e9 + 1, {"count": 4.0})])
    assert [s.values["count"] for s in store.metrics("gate")] == [3.0, 4.0]
    store.close()


def test_analyze_loses_no_metric_or_alert_while_the_store_is_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spool_module, "RETRY_EVERY_S", 0.0)
    broken = Outage(monkeypatch, READ_ONLY)
    calls = {"n": 0}
    # The store is read-only for a stretch of frames (writes 4 to 14), then back.
    monkeypatch.setattr(SqlStore, "write_metrics", _counting(SqlStore.write_metrics, calls, broken))
    config = load_config(sample_config())
    db = tmp_path / "store.db"
    summary = analyze(
        sample_video(), config, tmp_path / "run", AnalysisOptions(every=4, max_frames=30,
                                                                   write_video=False,
                                                                   progress=False),
        store=db,
    )  # fmt: skip
    assert summary.completed
    assert broken.failures > 0
    store = open_store(db)
    rows = store.metrics("plaza", kind="zone")
    assert len(rows) == 30 * 2  # every frame of every zone, outage or not
    logged = {alert["id"] for alert in read_alert_log(tmp_path / "run" / "alerts.jsonl")}
    assert logged and {alert.id for alert in store.alerts()} == logged
    assert not (tmp_path / "run" / "store-spool.jsonl").exists()
    store.close()


def _counting(wrapped, calls, broken):
    def counted(store, *args, **kwargs):
        calls["n"] += 1
        broken.down = 4 <= calls["n"] <= 14
        return wrapped(store, *args, **kwargs)

    return counted


def _event(index: int) -> AlertEvent:
    record = AlertRecord(
        id=f"a{index}", target="gate/all", camera="gate", zone="all", rule="count",
        metric="count", level="warning", direction="rising", threshold=5.0, clear=4.5,
        value=6.0, peak=6.0, start_s=1.0, opened_s=2.0,
    )  # fmt: skip
    return AlertEvent(kind="opened", record=record, time_s=2.0)


def test_webhook_deliveries_survive_a_restart_through_the_outbox(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store.db")
    with WebhookReceiver(fail_first=10**6) as receiver:
        # The receiver is failing; the process stops before the retries are through.
        sink = WebhookSink(receiver.url, retries=5, backoff_s=30, outbox=store, camera="gate")
        for index in range(3):
            sink.emit(_event(index))
        time.sleep(0.5)
        sink.close(timeout_s=0.5)
        pending = store.due_webhooks(receiver.url, now=time.time() + 1e6)
        assert len(pending) == 3 and receiver.event_ids() == set()
        assert any(d.attempts >= 1 and d.last_error for d in pending)
        # The receiver is back; the next run's sink for the URL delivers what is pending.
        receiver.fail_first = 0
        sink = WebhookSink(receiver.url, retries=2, backoff_s=0.05, outbox=store, camera="gate")
        sink.close(timeout_s=10)
        assert receiver.event_ids() == {"a0:opened", "a1:opened", "a2:opened"}
    assert store.due_webhooks(receiver.url, now=time.time() + 1e6) == []
    assert all(store.webhook(d.id).state == "delivered" for d in pending)
    store.close()


def test_webhook_retries_and_backoff_are_kept_with_the_outbox(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store.db")
    with WebhookReceiver(fail_first=2) as receiver:
        sink = WebhookSink(receiver.url, retries=3, backoff_s=0.05, outbox=store)
        sink.emit(_event(7))
        sink.close(timeout_s=10)
        assert receiver.failed == 2 and receiver.event_ids() == {"a7:opened"}
    assert store.webhook(1).state == "delivered" and store.webhook(1).attempts == 3
    assert sink.delivered == 1 and sink.failed == 0
    store.close()
