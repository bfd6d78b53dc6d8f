"""The alert engine: metric samples in, alert events out, driven only by stream time.

Every level of every rule on a target is a small state machine::

    idle --over threshold--> pending --held latch_s (and out of cooldown)--> active
    pending --back under threshold--> idle        (a spike shorter than the latch)
    active --beyond clear--> clearing --stayed clear clear_latch_s--> closed (cooldown starts)
    clearing --back inside clear--> active        (hysteresis: one alert, not dozens)

The engine never reads the wall clock, so the same metrics stream always gives the same alerts
and a recording can be re-evaluated with other thresholds (see :func:`replay`). Missing values
(``None`` or NaN) change nothing: they neither raise nor clear an alert, unless the rule's
``none_as`` gives ``None`` a value. Infinities are real values: ``minutes_to_limit = inf``
(the zone is not filling up; ``None`` means the same for those rules) clears the alert.

Example:
    >>> from crowdwatch.alerts.rules import AlertRule
    >>> rule = AlertRule(metric="density", latch_s=2, clear_latch_s=2, levels={"warning": 3.5})
    >>> engine = AlertEngine({"cam/gate": [rule]})
    >>> [e.kind for t in range(5) for e in engine.update("cam/gate", t, {"density": 4.0})]
    ['opened']
    >>> engine.level("cam/gate").label
    'warning'
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from crowdwatch.alerts.records import (
    AlertEvent,
    AlertRecord,
    EndReason,
    alert_id,
    split_target,
)
from crowdwatch.alerts.rules import AlertRule, Level, ResolvedLevel

# Rules under this key apply to every target that has no rules of its own.
ANY_TARGET = "*"

# Sample times add up in floating point (0.2 s steps); a latch of 10 s must still end at 10 s.
_TIME_EPS = 1e-9


class _State(enum.Enum):
    IDLE = "idle"
    PENDING = "pending"
    ACTIVE = "active"
    CLEARING = "clearing"


@dataclass
class _LevelTracker:
    """State of one level of one rule on one target."""

    rule: AlertRule
    level: ResolvedLevel
    state: _State = _State.IDLE
    since_s: float = 0.0
    cooldown_until_s: float = -math.inf
    record: AlertRecord | None = None

    def is_over(self, value: float) -> bool:
        """The firing condition: at or beyond the threshold."""
        if self.rule.rising:
            return value >= self.level.threshold
        return value <= self.level.threshold

    def is_clear(self, value: float) -> bool:
        """The clearing condition: strictly beyond the clear threshold."""
        if self.rule.rising:
            return value < self.level.clear
        return value > self.level.clear

    def worse(self, a: float, b: float) -> float:
        """The more dangerous of two values."""
        return max(a, b) if self.rule.rising else min(a, b)


class AlertEngine:
    """Turns per-target metric samples into alert events.

    Args:
        rules: target id (``"camera/zone"`` or ``"camera/line"``) -> its rules. Rules under
            ``"*"`` apply to every target without rules of its own. Rules may be
            :class:`AlertRule` objects or plain dictionaries (validated here).
        run: the run's id, part of every alert id (see :func:`alert_id`).

    Each target's samples must come in time order; different targets may interleave.
    """

    def __init__(self, rules: Mapping[str, Sequence[AlertRule | Mapping]], run: str = "") -> None:
        self._run = run
        self._rules = {target: _validated(target, items) for target, items in rules.items()}
        self._trackers: dict[str, list[_LevelTracker]] = {}
        self._last_time: dict[str, float] = {}
        self._records: dict[str, AlertRecord] = {}

    def update(
        self, target: str, time_s: float, metrics: Mapping[str, float | None]
    ) -> list[AlertEvent]:
        """Feed one sample of a target's metrics taken at stream time ``time_s``.

        Returns the alerts that opened or closed with this sample. Metrics the rules do not
        use are ignored; a target without rules yields nothing.
        """
        time_s = self._check_time(target, time_s)
        events: list[AlertEvent] = []
        for tracker in self._trackers_for(target):
            value = _value_or_none(metrics.get(tracker.rule.metric), tracker.rule.none_as)
            if value is None:
                continue
            event = self._step(tracker, target, time_s, value)
            if event is not None:
                events.append(event)
        return events

    def finish(self, time_s: float) -> list[AlertEvent]:
        """Close every open alert at the end of a stream (``end_reason="stream_end"``)."""
        events = []
        for target, trackers in self._trackers.items():
            end_s = max(time_s, self._last_time.get(target, time_s))
            for tracker in trackers:
                if tracker.record is not None:
                    cleared_at = tracker.since_s if tracker.state is _State.CLEARING else end_s
                    events.append(self._close(tracker, cleared_at, end_s, "stream_end"))
                tracker.state = _State.IDLE
        return events

    def level(self, target: str) -> Level:
        """The target's current level: the highest level with an open alert."""
        levels = [
            tracker.level.level
            for tracker in self._trackers.get(target, [])
            if tracker.record is not None
        ]
        return max(levels, default=Level.NORMAL)

    def active(self) -> list[AlertRecord]:
        """Copies of the open alerts, oldest first."""
        return [record.copy() for record in self._records.values() if record.is_open]

    def records(self) -> list[AlertRecord]:
        """Copies of every alert seen so far, open and closed, in the order they opened."""
        return [record.copy() for record in self._records.values()]

    def acknowledge(
        self, alert_id: str, operator: str, note: str = "", time_s: float | None = None
    ) -> AlertEvent:
        """Record that ``operator`` acknowledged an alert (open or already closed).

        ``time_s`` is the stream time of the acknowledgement; by default the alert's target's
        latest sample time.
        """
        record = self._records.get(alert_id)
        if record is None:
            raise KeyError(f"no alert with id {alert_id!r}")
        if not operator.strip():
            raise ValueError("acknowledging an alert needs the operator's name")
        if record.acknowledged:
            raise ValueError(
                f"alert {alert_id!r} was already acknowledged by {record.acknowledged_by!r} "
                f"at {record.acknowledged_s:g} s"
            )
        when = self._last_time.get(record.target, record.opened_s) if time_s is None else time_s
        record.acknowledged_by = operator
        record.acknowledged_s = float(when)
        record.acknowledged_note = note
        return AlertEvent("acknowledged", record.copy(), float(when))

    def _step(
        self, tracker: _LevelTracker, target: str, time_s: float, value: float
    ) -> AlertEvent | None:
        if tracker.state is _State.IDLE:
            if tracker.is_over(value):
                tracker.state, tracker.since_s = _State.PENDING, time_s
                return self._maybe_open(tracker, target, time_s, value)
            return None
        if tracker.state is _State.PENDING:
            if not tracker.is_over(value):
                tracker.state = _State.IDLE
                return None
            return self._maybe_open(tracker, target, time_s, value)
        record = tracker.record
        assert record is not None  # ACTIVE and CLEARING always hold their record
        record.peak = tracker.worse(record.peak, value)
        if not tracker.is_clear(value):
            tracker.state = _State.ACTIVE
            return None
        if tracker.state is _State.ACTIVE:
            tracker.state, tracker.since_s = _State.CLEARING, time_s
        if time_s - tracker.since_s + _TIME_EPS >= tracker.level.clear_latch_s:
            return self._close(tracker, tracker.since_s, time_s, "cleared")
        return None

    def _maybe_open(
        self, tracker: _LevelTracker, target: str, time_s: float, value: float
    ) -> AlertEvent | None:
        latched = time_s - tracker.since_s + _TIME_EPS >= tracker.level.latch_s
        if not latched or time_s < tracker.cooldown_until_s:
            return None
        level = tracker.level
        label = level.level.label
        camera, zone = split_target(target)
        record = AlertRecord(
            id=alert_id(target, tracker.rule.label, label, tracker.since_s, self._run),
            target=target,
            camera=camera,
            zone=zone,
            rule=tracker.rule.label,
            metric=tracker.rule.metric,
            level=label,
            direction="rising" if tracker.rule.rising else "falling",
            threshold=level.threshold,
            clear=level.clear,
            value=value,
            peak=value,
            start_s=tracker.since_s,
            opened_s=time_s,
        )
        self._records[record.id] = record
        tracker.state, tracker.record = _State.ACTIVE, record
        return AlertEvent("opened", record.copy(), time_s)

    def _close(
        self, tracker: _LevelTracker, end_s: float, time_s: float, reason: EndReason
    ) -> AlertEvent:
        record = tracker.record
        assert record is not None
        record.end_s, record.closed_s, record.end_reason = end_s, time_s, reason
        tracker.state, tracker.record = _State.IDLE, None
        tracker.cooldown_until_s = time_s + tracker.level.cooldown_s
        return AlertEvent("closed", record.copy(), time_s)

    def _trackers_for(self, target: str) -> list[_LevelTracker]:
        trackers = self._trackers.get(target)
        if trackers is None:
            rules = self._rules.get(target, self._rules.get(ANY_TARGET, []))
            trackers = [
                _LevelTracker(rule=rule, level=level)
                for rule in rules
                for level in rule.resolved_levels()
            ]
            self._trackers[target] = trackers
        return trackers

    def _check_time(self, target: str, time_s: float) -> float:
        time_s = float(time_s)
        if not math.isfinite(time_s):
            raise ValueError(f"sample time for {target!r} must be a finite number, got {time_s}")
        last = self._last_time.get(target)
        if last is not None and time_s < last:
            raise ValueError(
                f"samples for {target!r} must come in time order: {time_s:g} s after {last:g} s"
            )
        self._last_time[target] = time_s
        return time_s


def replay(
    rules: Mapping[str, Sequence[AlertRule | Mapping]],
    stream: Iterable[tuple[str, float, Mapping[str, float | None]]],
) -> list[AlertRecord]:
    """Re-evaluate a recorded metrics stream with the given rules.

    Alerts still open when the stream ends close at its last sample time. Pure: the same rules
    and stream always give the same records.

    Example:
        >>> from crowdwatch.alerts.rules import AlertRule
        >>> rule = AlertRule(metric="count", latch_s=0, levels={"advisory": 10})
        >>> stream = [("cam/a", t, {"count": c}) for t, c in enumerate([5, 12, 14, 3])]
        >>> [(r.level, r.start_s, r.end_s, r.peak) for r in replay({"cam/a": [rule]}, stream)]
        [('advisory', 1.0, 3.0, 14.0)]
    """
    engine = AlertEngine(rules)
    last_time = -math.inf
    for target, time_s, metrics in stream:
        engine.update(target, time_s, metrics)
        last_time = max(last_time, float(time_s))
    if math.isfinite(last_time):
        engine.finish(last_time)
    return engine.records()


def _validated(target: str, rules: Sequence[AlertRule | Mapping]) -> list[AlertRule]:
    if isinstance(rules, AlertRule | Mapping | str):
        raise TypeError(f"rules for {target!r} must be a list of rules, got {type(rules).__name__}")
    validated = [
        rule if isinstance(rule, AlertRule) else AlertRule.model_validate(rule) for rule in rules
    ]
    labels = [rule.label for rule in validated]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ValueError(
            f"target {target!r} has several rules named {duplicates}; give each a distinct 'name'"
        )
    return validated


def _value_or_none(value: float | None, none_as: float | None) -> float | None:
    """None for a missing sample (None or NaN); infinities stay, they compare as they should."""
    if value is None:
        return none_as
    value = float(value)
    return None if math.isnan(value) else value
