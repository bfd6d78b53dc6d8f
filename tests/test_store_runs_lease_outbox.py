"""Schema 2 on SQLite and PostgreSQL: runs told apart by run id, the engine lease (one engine
per store, atomic), the webhook outbox that survives a restart."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pgserver import fresh_database_url

from crowdwatch.store import MetricSample, Retention, StoreError, open_store

T0 = 1_750_000_000.0


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(tmp_path / "store.db") if request.param == "sqlite" else fresh_database_url()


@pytest.fixture
def store(target: str):
    opened = open_store(target)
    yield opened
    opened.close()


def _alert(alert_id: str, opened: float) -> dict:
    return {
        "id": alert_id,
        "camera": "gate",
        "zone": "north",
        "rule": "count",
        "metric": "count",
        "level": "warning",
        "value": 12.0,
        "peak": 12.0,
        "start_s": opened,
        "opened_s": opened,
    }


def test_two_runs_over_one_camera_are_told_apart(store) -> None:
    first = store.start_run("gate", "analyze", source="clip.mp4", config_hash="abc", started=T0)
    second = store.start_run(
        "gate", "analyze", source="clip.mp4", config_hash="def", model="csrnet 1.2", started=T0
    )
    assert first != second and first.startswith("analyze-20250615T")
    # The same clip, the same times: only the run id differs.
    for run_id, count in ((first, 5.0), (second, 7.0)):
        store.write_metrics(
            [MetricSample("gate", "north", T0 + i, {"count": count}) for i in range(3)],
            run_id=run_id,
        )
        store.upsert_alert(_alert(f"{run_id}/a", T0 + 1), now=T0 + 1, run_id=run_id)
    store.write_metrics([MetricSample("gate", "north", T0 + 9, {"count": 1.0}, run_id=first)])
    assert [s.value("count") for s in store.metrics("gate", run_id=first)] == [1.0]
    assert [s.value("count") for s in store.metrics("gate", run_id=second)] == [7.0] * 3
    assert store.metric_series("gate", "north", "count", run_id=second)[0] == (T0, 7.0)
    (latest,) = store.latest_metrics("gate")
    assert latest.run_id == first and store.latest_metrics(run_id=second) == []
    assert [a.id for a in store.alerts(run_id=second)] == [f"{second}/a"]
    assert store.alert(f"{first}/a").run_id == first
    # An update without a run id keeps the alert's run.
    store.upsert_alert({**_alert(f"{first}/a", T0 + 1), "closed_s": T0 + 5}, now=T0 + 5)
    assert store.alert(f"{first}/a").run_id == first

    store.end_run(first, ended=T0 + 10)
    runs = store.runs("gate")
    assert {r.id for r in runs} == {first, second}
    assert store.run(first).ended == T0 + 10 and store.run(second).ended is None
    assert store.run(second).model == "csrnet 1.2" and store.run(second).config_hash == "def"
    assert store.runs("other") == [] and store.run("nope") is None
    engine = store.start_run(None, "engine", detail={"cameras": ["gate", "plaza"]}, started=T0)
    assert store.run(engine).detail == {"cameras": ["gate", "plaza"]}
    assert len(store.runs()) == 3 and store.run(engine).camera is None
    with pytest.raises(KeyError):
        store.end_run("nope")
    with pytest.raises(ValueError, match="unknown run kind"):
        store.start_run("gate", "replay")
    with pytest.raises(ValueError, match="already in the store"):
        store.start_run("gate", "analyze", run_id=first)


def test_the_engine_lease_refuses_a_second_engine_and_takes_over_a_stale_one(store) -> None:
    lease = store.acquire_lease("host-a:100", ttl_s=30, now=T0)
    assert (lease.owner, lease.since, lease.heartbeat) == ("host-a:100", T0, T0)
    with pytest.raises(StoreError, match=r"in use by engine host-a:100 since 2025-06-15T"):
        store.acquire_lease("host-b:200", ttl_s=30, now=T0 + 10)
    # Renewed, it stays fresh past its first ttl.
    assert store.renew_lease("host-a:100", now=T0 + 25).heartbeat == T0 + 25
    with pytest.raises(StoreError, match="host-a:100"):
        store.acquire_lease("host-b:200", ttl_s=30, now=T0 + 50)
    # The holder may take it again (a restart in place) and keeps its "since".
    assert store.acquire_lease("host-a:100", ttl_s=30, now=T0 + 52).since == T0
    # Killed: no heartbeat for longer than the ttl; the next engine takes over.
    taken = store.acquire_lease("host-b:200", ttl_s=30, now=T0 + 90)
    assert (taken.owner, taken.since) == ("host-b:200", T0 + 90)
    assert store.lease().owner == "host-b:200"
    # The old engine, back, learns that it lost the lease.
    with pytest.raises(StoreError, match="host-a:100 lost the engine lease.*host-b:200"):
        store.renew_lease("host-a:100", now=T0 + 91)
    assert store.release_lease("host-a:100") is False
    assert store.release_lease("host-b:200") is True and store.lease() is None
    assert store.acquire_lease("host-a:100", ttl_s=30).owner == "host-a:100"


def test_two_engines_acquiring_at_once_exactly_one_wins(target: str) -> None:
    stores = [open_store(target), open_store(target)]
    try:
        for round_ in range(8):
            barrier = threading.Barrier(len(stores))
            results: dict[str, object] = {}

            def acquire(store, owner: str, barrier=barrier, results=results) -> None:
                barrier.wait()
                try:
                    results[owner] = store.acquire_lease(owner, ttl_s=30)
                except StoreError as error:
                    results[owner] = error

            threads = [
                threading.Thread(target=acquire, args=(s, f"engine-{i}:{round_}"))
                for i, s in enumerate(stores)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            winners = [o for o, r in results.items() if not isinstance(r, StoreError)]
            losers = [r for r in results.values() if isinstance(r, StoreError)]
            assert len(winners) == 1 and len(losers) == 1, results
            assert winners[0] in str(losers[0])
            assert stores[0].lease().owner == winners[0]
            assert stores[1].release_lease(winners[0])
    finally:
        for store in stores:
            store.close()


def test_the_webhook_outbox_keeps_deliveries_until_done(target: str) -> None:
    store = open_store(target)
    first = store.enqueue_webhook("http://a/hook", b'{"n": 1}', "e1", now=T0)
    second = store.enqueue_webhook("http://a/hook", '{"n": 2}', "e2", now=T0 + 1)
    other = store.enqueue_webhook("http://b/hook", b"{}", "e1", now=T0 + 2)
    assert store.enqueue_webhook("http://a/hook", b'{"n": 1}', "e1", now=T0 + 3) == first
    assert len({first, second, other}) == 3
    due = store.due_webhooks(now=T0 + 5)
    assert [(d.id, d.body) for d in due] == [
        (first, b'{"n": 1}'),
        (second, b'{"n": 2}'),
        (other, b"{}"),
    ]
    assert [d.id for d in store.due_webhooks("http://a/hook", now=T0 + 5, limit=1)] == [first]
    assert store.due_webhooks(now=T0 - 1) == []

    store.mark_webhook_failed(first, next_try=T0 + 60, error="HTTP 503")
    store.mark_webhook_delivered(second, now=T0 + 6)
    store.close()

    store = open_store(target)  # a restart: the outbox is still there
    assert [d.id for d in store.due_webhooks(now=T0 + 10)] == [other]
    (retry,) = store.due_webhooks("http://a/hook", now=T0 + 60)
    assert (retry.id, retry.attempts, retry.last_error) == (first, 1, "HTTP 503")
    store.mark_webhook_failed(first, next_try=T0 + 120, error="timed out")
    store.give_up_webhook(first, "gave up after 2 tries", now=T0 + 130)
    gone = store.webhook(first)
    assert (gone.state, gone.attempts, gone.last_error) == ("abandoned", 3, "gave up after 2 tries")
    assert store.webhook(second).state == "delivered" and store.webhook(second).done == T0 + 6
    assert [d.id for d in store.due_webhooks(now=T0 + 1000)] == [other]
    with pytest.raises(KeyError):
        store.mark_webhook_delivered(99999)
    # Retention drops what is done, never what is still to be delivered.
    assert store.prune(Retention(alerts_days=1), now=T0 + 5 * 86400)["webhook_outbox"] == 2
    assert [d.id for d in store.due_webhooks(now=T0 + 1000)] == [other]
    store.close()
