"""Crowding alerts: rules with levels, latch, hysteresis and cooldown; an engine; sinks.

Typical use::

    from crowdwatch.alerts import AlertEngine, AlertRule, JsonlAlertLog, WebhookSink, FanoutSink

    engine = AlertEngine({"cam1/gate": [AlertRule(metric="density", levels={"warning": 3.5})]})
    sink = FanoutSink([JsonlAlertLog("alerts.jsonl"), WebhookSink("http://127.0.0.1:9000/hook")])
    for event in engine.update("cam1/gate", frame.time_s, {"density": 3.8}):
        sink.emit(event)
    for event in engine.finish(last_time_s):
        sink.emit(event)
    sink.close()
"""

from crowdwatch.alerts.engine import ANY_TARGET, AlertEngine, replay
from crowdwatch.alerts.records import AlertEvent, AlertRecord, alert_id, split_target
from crowdwatch.alerts.rules import (
    DEFAULT_LEVELS,
    METRIC_UNITS,
    AlertRule,
    Level,
    LevelRule,
    ResolvedLevel,
    default_rules,
    zone_rules,
)
from crowdwatch.alerts.sinks import (
    AlertSink,
    FanoutSink,
    JsonlAlertLog,
    WebhookSink,
    read_alert_log,
)

__all__ = [
    "ANY_TARGET",
    "DEFAULT_LEVELS",
    "METRIC_UNITS",
    "AlertEngine",
    "AlertEvent",
    "AlertRecord",
    "AlertRule",
    "AlertSink",
    "FanoutSink",
    "JsonlAlertLog",
    "Level",
    "LevelRule",
    "ResolvedLevel",
    "WebhookSink",
    "alert_id",
    "default_rules",
    "read_alert_log",
    "replay",
    "split_target",
    "zone_rules",
]
