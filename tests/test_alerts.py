"""Alert engine, rules and sinks on synthetic metric streams with known answers."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from pydantic import ValidationError

from crowdwatch.alerts import (
    ANY_TARGET,
    AlertEngine,
    AlertEvent,
    AlertRecord,
    AlertRule,
    FanoutSink,
    JsonlAlertLog,
    Level,
    WebhookSink,
    default_rules,
    read_alert_log,
    replay,
)

TARGET = "cam1/gate"
HZ = 5.0


def density_rule(**overrides) -> AlertRule:
    """One warning level at 2.0 /m², clear 1.8, latch 5 s, clear latch 5 s, cooldown 30 s."""
    spec = {
        "metric": "density",
        "latch_s": 5,
        "clear_latch_s": 5,
        "cooldown_s": 30,
        "levels": {"warning": {"threshold": 2.0, "clear": 1.8}},
    }
    return AlertRule.model_validate({**spec, **overrides})


def samples(values: list[float | None] | np.ndarray, start_s: float = 0.0, hz: float = HZ):
    """(time_s, value) pairs at ``hz`` samples per second."""
    return [(start_s + i / hz, None if v is None else float(v)) for i, v in enumerate(values)]


def run(engine: AlertEngine, series, metric: str = "density", target: str = TARGET):
    """Feed a series into the engine and collect every event."""
    events: list[AlertEvent] = []
    for time_s, value in series:
        events.extend(engine.update(target, time_s, {metric: value}))
    return events


def held(value: float, seconds: float) -> list[float]:
    return [value] * round(seconds * HZ)


# --- latch, hysteresis, cooldown -------------------------------------------------------------


def test_spike_shorter_than_latch_raises_nothing() -> None:
    engine = AlertEngine({TARGET: [density_rule()]})
    events = run(engine, samples(held(1.0, 10) + held(4.0, 4.8) + held(1.0, 10)))
    assert events == []
    assert engine.level(TARGET) is Level.NORMAL


def test_condition_held_for_latch_opens_one_alert_at_latch_end() -> None:
    engine = AlertEngine({TARGET: [density_rule()]})
    events = run(engine, samples(held(1.0, 10) + held(2.5, 20)))
    assert [e.kind for e in events] == ["opened"]
    record = events[0].record
    assert record.start_s == pytest.approx(10.0)
    assert record.opened_s == pytest.approx(15.0)
    assert (record.camera, record.zone, record.level, record.value) == (
        "cam1",
        "gate",
        "warning",
        2.5,
    )
    assert engine.level(TARGET) is Level.WARNING


def test_hysteresis_keeps_one_alert_open_between_clear_and_threshold() -> None:
    engine = AlertEngine({TARGET: [density_rule()]})
    # Over threshold, then 60 s oscillating between 1.85 (above clear) and 2.1, then brief
    # dips below clear (3 s, shorter than the 5 s clear latch), then really clear.
    oscillation = [1.85 if (i // 5) % 2 else 2.1 for i in range(round(60 * HZ))]
    dips = (held(1.5, 3) + held(2.05, 2)) * 3
    series = samples(held(2.5, 6) + oscillation + dips + held(1.0, 10))
    events = run(engine, series)
    assert [e.kind for e in events] == ["opened", "closed"]
    closed = events[1].record
    clear_began = 6 + 60 + 15
    assert closed.end_s == pytest.approx(clear_began)
    assert closed.closed_s == pytest.approx(clear_began + 5)
    assert closed.peak == 2.5
    assert closed.end_reason == "cleared"


def test_cooldown_blocks_refire_then_allows_it() -> None:
    engine = AlertEngine({TARGET: [density_rule()]})
    # Opens at 5 s, clears at 10 s, closes at 15 s: cooldown until 45 s.
    first = held(3.0, 10) + held(1.0, 6)
    # Over again from 16 s to 60 s: latch is done at 21 s but cooldown holds it until 45 s.
    events = run(engine, samples(first + held(3.0, 44)))
    assert [e.kind for e in events] == ["opened", "closed", "opened"]
    assert events[1].record.closed_s == pytest.approx(15.0)
    assert events[2].record.opened_s == pytest.approx(45.0)
    assert events[2].record.start_s == pytest.approx(16.0)


def test_refire_after_cooldown_needs_a_new_latch() -> None:
    engine = AlertEngine({TARGET: [density_rule()]})
    series = samples(held(3.0, 10) + held(1.0, 40) + held(3.0, 10))
    events = run(engine, series)
    assert [e.kind for e in events] == ["opened", "closed", "opened"]
    assert events[2].record.start_s == pytest.approx(50.0)
    assert events[2].record.opened_s == pytest.approx(55.0)
    assert events[0].record.id != events[2].record.id


def test_zone_flickering_for_ten_minutes_at_5hz_raises_exactly_one_alert() -> None:
    rng = np.random.default_rng(7)
    # Density estimates of a zone hovering at the 2.0 /m² threshold for ten minutes: the mean
    # drifts +-0.12 around it and the per-frame estimate is noisy, so readings cross the
    # threshold (and now and then the 1.8 clear line) every few samples.
    t = np.arange(0, 600, 1 / HZ)
    hovering = 2.0 + 0.12 * np.sin(2 * np.pi * t / 40) + rng.normal(0, 0.08, t.size)
    values = np.concatenate([np.linspace(1.0, 2.0, round(30 * HZ)), hovering, held(1.0, 20)])
    crossings = int(np.sum(np.diff(np.sign(hovering - 2.0)) != 0))
    assert crossings > 500  # it really flickers
    assert np.sum(hovering < 1.8) > 100

    tuned = run(AlertEngine({TARGET: [density_rule(latch_s=2)]}), samples(values))
    assert [e.kind for e in tuned] == ["opened", "closed"]

    naive_rule = density_rule(
        latch_s=0,
        clear_latch_s=0,
        cooldown_s=0,
        levels={"warning": {"threshold": 2.0}},
        hysteresis=0,
    )
    naive = run(AlertEngine({TARGET: [naive_rule]}), samples(values))
    assert sum(e.kind == "opened" for e in naive) > 200  # what latch + hysteresis prevent


# --- levels, escalation, falling metrics ---------------------------------------------------------


def test_escalation_advisory_warning_critical_and_back() -> None:
    rules = [r.model_copy(update={"latch_s": 2.0, "clear_latch_s": 2.0}) for r in default_rules()]
    engine = AlertEngine({TARGET: rules})
    ramp = list(np.linspace(0.5, 6.0, round(60 * HZ))) + held(6.0, 10)
    ramp += list(np.linspace(6.0, 0.5, round(60 * HZ))) + held(0.5, 10)
    levels_seen: list[Level] = []
    events: list[AlertEvent] = []
    for time_s, value in samples(ramp):
        events.extend(engine.update(TARGET, time_s, {"density": value}))
        if not levels_seen or levels_seen[-1] != engine.level(TARGET):
            levels_seen.append(engine.level(TARGET))
    assert levels_seen == [
        Level.NORMAL,
        Level.ADVISORY,
        Level.WARNING,
        Level.CRITICAL,
        Level.WARNING,
        Level.ADVISORY,
        Level.NORMAL,
    ]
    order = [(e.kind, e.record.level) for e in events]
    assert order == [
        ("opened", "advisory"),
        ("opened", "warning"),
        ("opened", "critical"),
        ("closed", "critical"),
        ("closed", "warning"),
        ("closed", "advisory"),
    ]
    critical = events[3].record
    assert critical.peak == pytest.approx(6.0)
    assert critical.value >= 5.0
    # Default hysteresis 10 %: critical (5.0) ends once density falls below 4.5.
    time_at_4_5 = 70 + (6.0 - 4.5) / (5.5 / 60)
    assert critical.end_s == pytest.approx(time_at_4_5, abs=0.3)


def test_falling_rule_fires_below_thresholds() -> None:
    rule = AlertRule(
        metric="minutes_to_limit",
        latch_s=1,
        clear_latch_s=1,
        levels={"advisory": 15, "warning": 10, "critical": 5},
    )
    assert not rule.rising
    engine = AlertEngine({TARGET: [rule]})
    minutes = list(np.linspace(30, 3, round(60 * HZ))) + list(np.linspace(3, 30, round(60 * HZ)))
    events = run(engine, samples(minutes), metric="minutes_to_limit")
    assert [(e.kind, e.record.level) for e in events] == [
        ("opened", "advisory"),
        ("opened", "warning"),
        ("opened", "critical"),
        ("closed", "critical"),
        ("closed", "warning"),
        ("closed", "advisory"),
    ]
    critical = events[2].record
    assert critical.direction == "falling"
    assert critical.value <= 5
    assert critical.clear == pytest.approx(5.5)
    assert events[3].record.peak == pytest.approx(3.0)  # the worst: fewest minutes left


def test_forecast_of_never_clears_a_minutes_to_limit_alert() -> None:
    rule = AlertRule(metric="minutes_to_limit", latch_s=1, clear_latch_s=1, levels={"warning": 10})
    engine = AlertEngine({TARGET: [rule]})
    series = samples(held(8.0, 3) + held(float("inf"), 3))  # the zone stopped filling up
    events = run(engine, series, metric="minutes_to_limit")
    assert [e.kind for e in events] == ["opened", "closed"]
    assert events[1].record.end_s == pytest.approx(3.0)
    json.dumps(events[1].to_dict(), allow_nan=False)
    # The trend measures return None for "not rising": for this metric that clears too ...
    engine = AlertEngine({TARGET: [rule]})
    events = run(engine, samples(held(8.0, 3) + [None] * 15), metric="minutes_to_limit")
    assert [e.kind for e in events] == ["opened", "closed"]
    # ... while NaN stays a missing sample, and other metrics keep None as missing.
    engine = AlertEngine({TARGET: [rule]})
    events = run(engine, samples(held(8.0, 3) + [float("nan")] * 15), metric="minutes_to_limit")
    assert [e.kind for e in events] == ["opened"]
    assert density_rule().none_as is None


def test_missing_values_neither_raise_nor_clear() -> None:
    engine = AlertEngine({TARGET: [density_rule()]})
    assert run(engine, samples(held(3.0, 6))) != []
    gap = [(6 + i / HZ, v) for i, v in enumerate([None, float("nan")] * 50)]
    assert run(engine, gap) == []
    assert engine.level(TARGET) is Level.WARNING
    assert engine.update(TARGET, 30.0, {"count": 12.0}) == []  # metric absent
    assert engine.level(TARGET) is Level.WARNING


def test_finish_closes_open_alerts_at_stream_end() -> None:
    engine = AlertEngine({TARGET: [density_rule()]})
    run(engine, samples(held(3.0, 20)))
    events = engine.finish(20.0)
    assert [e.kind for e in events] == ["closed"]
    assert events[0].record.end_reason == "stream_end"
    assert events[0].record.end_s == 20.0
    assert engine.active() == [] and engine.level(TARGET) is Level.NORMAL


def test_targets_are_independent_and_wildcard_rules_apply_to_unlisted_targets() -> None:
    strict = density_rule(levels={"warning": 1.0})
    engine = AlertEngine({TARGET: [strict], ANY_TARGET: [density_rule()]})
    for time_s, value in samples(held(1.5, 10)):
        engine.update(TARGET, time_s, {"density": value})
        engine.update("cam2/hall", time_s, {"density": value})
    assert engine.level(TARGET) is Level.WARNING
    assert engine.level("cam2/hall") is Level.NORMAL
    assert [r.target for r in engine.active()] == [TARGET]


def test_samples_out_of_time_order_are_rejected() -> None:
    engine = AlertEngine({TARGET: [density_rule()]})
    engine.update(TARGET, 10.0, {"density": 1.0})
    with pytest.raises(ValueError, match="time order"):
        engine.update(TARGET, 9.0, {"density": 1.0})


# --- records: determinism, replay, acknowledgement --------------------------------------------


def noisy_event_stream(seed: int = 3) -> list[tuple[str, float, dict[str, float]]]:
    """Two zones over five minutes: one fills up and empties, one stays calm."""
    rng = np.random.default_rng(seed)
    t = np.arange(0, 300, 1 / HZ)
    busy = 1.0 + 4.0 * np.exp(-(((t - 150) / 50) ** 2)) + rng.normal(0, 0.2, t.size)
    calm = 0.8 + rng.normal(0, 0.2, t.size)
    stream = []
    for time_s, b, c in zip(t, busy, calm, strict=True):
        stream.append(("cam1/north", float(time_s), {"density": float(b)}))
        stream.append(("cam1/south", float(time_s), {"density": float(c)}))
    return stream


def test_same_stream_gives_identical_records() -> None:
    rules = {ANY_TARGET: default_rules()}
    first = [r.to_dict() for r in replay(rules, noisy_event_stream())]
    second = [r.to_dict() for r in replay(rules, noisy_event_stream())]
    assert first == second
    assert {r["level"] for r in first} == {"advisory", "warning"}
    assert all(r["target"] == "cam1/north" for r in first)
    json.dumps(first)  # JSON-serialisable


def test_replay_with_other_thresholds() -> None:
    stream = noisy_event_stream()
    default = replay({ANY_TARGET: default_rules()}, stream)
    stricter = replay(
        {ANY_TARGET: [AlertRule(metric="density", levels={"advisory": 0.5, "critical": 4.0})]},
        stream,
    )
    laxer = replay({ANY_TARGET: [AlertRule(metric="density", levels={"critical": 8.0})]}, stream)
    assert [r.level for r in default] == ["advisory", "warning"]
    assert sorted({(r.target, r.level) for r in stricter}) == [
        ("cam1/north", "advisory"),
        ("cam1/north", "critical"),
        ("cam1/south", "advisory"),
    ]
    assert laxer == []
    assert all(r.end_s is not None for r in default + stricter)


def test_acknowledge_open_and_closed_alerts() -> None:
    engine = AlertEngine({TARGET: [density_rule()]})
    opened = run(engine, samples(held(3.0, 10)))[0].record
    event = engine.acknowledge(opened.id, "alice", "stewards sent", time_s=9.5)
    assert event.kind == "acknowledged"
    assert (event.record.acknowledged_by, event.record.acknowledged_s) == ("alice", 9.5)
    assert engine.active()[0].acknowledged_note == "stewards sent"
    with pytest.raises(ValueError, match="already acknowledged by 'alice'"):
        engine.acknowledge(opened.id, "bob")
    with pytest.raises(KeyError, match="no alert with id"):
        engine.acknowledge("nope", "bob")

    closed = run(engine, samples(held(1.0, 10), start_s=10))[0].record
    assert closed.acknowledged_by == "alice"  # the close carries the acknowledgement
    engine.finish(20)
    engine2 = AlertEngine({TARGET: [density_rule()]})
    run(engine2, samples(held(3.0, 10) + held(1.0, 10)))
    late = engine2.acknowledge(closed.id, "carol")  # same stream -> same id, ack after close
    assert late.record.acknowledged_s == pytest.approx(20 - 1 / HZ)
    assert not late.record.is_open


def test_events_are_snapshots_of_their_alert() -> None:
    engine = AlertEngine({TARGET: [density_rule()]})
    opened = run(engine, samples(held(3.0, 6)))[0]
    run(engine, samples(held(4.5, 2), start_s=6))
    assert opened.record.peak == 3.0
    (now,) = engine.active()
    assert now.peak == 4.5
    assert AlertRecord.from_dict(now.to_dict()) == now


# --- rule validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"metric": "density", "levels": {"advisory": 3.0, "warning": 2.0}},
            "warning threshold 2 must be above advisory threshold 3",
        ),
        (
            {"metric": "minutes_to_limit", "levels": {"warning": 5, "critical": 10}},
            "critical threshold 10 must be below warning threshold 5",
        ),
        (
            {"metric": "density", "levels": {"warning": {"threshold": 3, "clear": 4}}},
            "warning clear 4 must be at or below its threshold 3",
        ),
        (
            {
                "metric": "count",
                "direction": "falling",
                "levels": {"critical": {"threshold": 5, "clear": 4}},
            },
            "critical clear 4 must be at or above its threshold 5",
        ),
        ({"metric": "density", "latch_s": -1, "levels": {"warning": 3}}, "latch_s"),
        (
            {"metric": "density", "levels": {"warning": {"threshold": 3, "cooldown_s": -5}}},
            "cooldown_s",
        ),
        ({"metric": "densty", "levels": {"warning": 3}}, "metric"),
        ({"metric": "density", "levels": {"warnin": 3}}, "'advisory', 'warning' or 'critical'"),
        ({"metric": "density", "levels": {}}, "at least 1 item"),
        ({"metric": "density", "levels": {"warning": 3}, "latch": 5}, "Extra inputs"),
        ({"metric": "density", "levels": {"warning": float("nan")}}, "finite"),
        ({"metric": "density", "levels": {"warning": 3}, "none_as": float("nan")}, "not NaN"),
    ],
)
def test_invalid_rules_are_rejected_with_clear_messages(spec: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AlertRule.model_validate(spec)


def test_rule_defaults_and_yaml_shorthand() -> None:
    rule = AlertRule.model_validate(
        {
            "metric": "density",
            "levels": {"critical": {"threshold": 5.0, "latch_s": 2}, "advisory": 2},
        }
    )
    advisory, critical = rule.resolved_levels()
    assert (advisory.level, advisory.threshold, advisory.clear, advisory.latch_s) == (
        Level.ADVISORY,
        2.0,
        pytest.approx(1.8),
        10.0,
    )
    assert (critical.level, critical.latch_s, critical.cooldown_s) == (Level.CRITICAL, 2.0, 60.0)
    assert [r.threshold for r in default_rules()[0].resolved_levels()] == [2.0, 3.5, 5.0]
    assert Level.from_name("Critical") is Level.CRITICAL
    with pytest.raises(ValueError, match="unknown alert level 'severe'"):
        Level.from_name("severe")


def test_duplicate_rule_names_on_a_target_are_rejected() -> None:
    with pytest.raises(ValueError, match="several rules named"):
        AlertEngine({TARGET: [density_rule(), density_rule()]})
    AlertEngine({TARGET: [density_rule(), density_rule(name="density-fast", latch_s=1)]})


# --- JSONL log ---------------------------------------------------------------------------------


def test_jsonl_log_writes_closed_alerts_at_once_and_open_ones_at_close(tmp_path) -> None:
    path = tmp_path / "logs" / "alerts.jsonl"
    log = JsonlAlertLog(path)
    engine = AlertEngine({TARGET: [density_rule()], "cam1/exit": [density_rule()]})
    for time_s, value in samples(held(3.0, 10) + held(1.0, 10)):
        for event in engine.update(TARGET, time_s, {"density": value}):
            log.emit(event)
        for event in engine.update("cam1/exit", time_s, {"density": 3.0}):
            log.emit(event)
    # Written (and fsync-ed) before close: a crash now would lose nothing closed.
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(x["target"], x["event"], x["open"]) for x in lines] == [(TARGET, "closed", False)]

    log.close(time_s=20 - 1 / HZ)
    log.close()  # idempotent
    records = read_alert_log(path)
    assert [(r["target"], r["open"], r["end_s"]) for r in records] == [
        (TARGET, False, pytest.approx(10.0)),
        ("cam1/exit", True, pytest.approx(20 - 1 / HZ)),
    ]


def test_jsonl_log_keeps_late_acknowledgements_and_survives_a_torn_line(tmp_path) -> None:
    path = tmp_path / "alerts.jsonl"
    engine = AlertEngine({TARGET: [density_rule()]})
    log = JsonlAlertLog(path)
    for event in run(engine, samples(held(3.0, 10) + held(1.0, 10))):
        log.emit(event)
    (record,) = engine.records()
    log.emit(engine.acknowledge(record.id, "alice", time_s=25.0))
    log.close()
    with path.open("a") as file:
        file.write('{"id": "torn')  # a crash mid-write
    assert len(read_alert_log(path, latest=False)) == 2
    (latest,) = read_alert_log(path)
    assert (latest["acknowledged_by"], latest["end_s"]) == ("alice", pytest.approx(10.0))
    JsonlAlertLog(path).close()  # reopening appends, never truncates
    assert len(read_alert_log(path, latest=False)) == 2


# --- webhooks ----------------------------------------------------------------------------------


class _Receiver(ThreadingHTTPServer):
    """A local webhook receiver that answers 500 to its first ``failures`` requests."""

    def __init__(self, failures: int, status: int = 500) -> None:
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.failures = failures
        self.status = status
        self.attempts = 0
        self.accepted: list[dict] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.attempts += 1
            fail = self.server.attempts <= self.server.failures
            if not fail:
                self.server.accepted.append(json.loads(body))
        self.send_response(self.server.status if fail else 200)
        self.end_headers()

    def log_message(self, *args) -> None:  # keep test output quiet
        pass


@pytest.fixture
def receiver_factory() -> Iterator:
    servers: list[_Receiver] = []

    def start(failures: int, status: int = 500) -> _Receiver:
        server = _Receiver(failures, status)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def one_event() -> AlertEvent:
    engine = AlertEngine({TARGET: [density_rule()]})
    return run(engine, samples(held(3.0, 6)))[0]


def test_webhook_retries_server_errors_and_delivers_once(receiver_factory) -> None:
    receiver = receiver_factory(failures=2)
    sink = WebhookSink(receiver.url, timeout_s=2, retries=3, backoff_s=0.05)
    event = one_event()
    sink.emit(event)
    sink.close(timeout_s=10)
    assert receiver.attempts == 3
    assert receiver.accepted == [event.to_dict()]
    assert (sink.delivered, sink.failed, sink.dropped) == (1, 0, 0)


def test_webhook_gives_up_after_retries_with_a_warning(receiver_factory, caplog) -> None:
    receiver = receiver_factory(failures=100)
    sink = WebhookSink(receiver.url, timeout_s=2, retries=2, backoff_s=0.01)
    with caplog.at_level(logging.WARNING, logger="crowdwatch.alerts.sinks"):
        sink.emit(one_event())
        sink.close(timeout_s=10)
    assert receiver.attempts == 3
    assert (sink.delivered, sink.failed) == (0, 1)
    assert "giving up on an event after 3 tries" in caplog.text


def test_webhook_does_not_retry_client_errors(receiver_factory) -> None:
    receiver = receiver_factory(failures=100, status=400)
    sink = WebhookSink(receiver.url, timeout_s=2, retries=3, backoff_s=0.01)
    sink.emit(one_event())
    sink.close(timeout_s=10)
    assert receiver.attempts == 1 and sink.failed == 1


def test_unreachable_or_hanging_webhook_never_blocks_emit() -> None:
    # A port that accepts connections but never answers: each request hangs until its timeout.
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(16)
    # A port nobody listens on: connection refused.
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused_port = closed.getsockname()[1]
    closed.close()
    try:
        sinks = [
            WebhookSink(f"http://127.0.0.1:{hanging.getsockname()[1]}/", timeout_s=5, retries=5),
            WebhookSink(f"http://127.0.0.1:{refused_port}/", timeout_s=5, retries=5, queue_size=50),
        ]
        event = one_event()
        started = time.perf_counter()
        for _ in range(200):
            for sink in sinks:
                sink.emit(event)
        emit_s = time.perf_counter() - started
        assert emit_s < 0.5
        assert sinks[1].dropped >= 140  # bounded queue: overflow is dropped, not waited on
        started = time.perf_counter()
        for sink in sinks:
            sink.close(timeout_s=0.2)
        assert time.perf_counter() - started < 3.0
    finally:
        hanging.close()


def test_webhook_rejects_bad_urls() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        WebhookSink("ftp://example.org/hook")


def test_fanout_keeps_going_when_one_sink_fails(tmp_path, caplog) -> None:
    class Broken:
        def emit(self, event: AlertEvent) -> None:
            raise RuntimeError("disk full")

        def close(self) -> None:
            raise RuntimeError("disk full")

    path = tmp_path / "alerts.jsonl"
    sink = FanoutSink([Broken(), JsonlAlertLog(path, kinds=("opened",))])
    with caplog.at_level(logging.ERROR):
        sink.emit(one_event())
        sink.close()
    assert "disk full" in caplog.text
    assert [r["event"] for r in read_alert_log(path, latest=False)] == ["opened", "open"]
