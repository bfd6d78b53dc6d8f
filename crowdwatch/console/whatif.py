"""Re-running alert rules on recorded metrics with other thresholds ("what if").

The alert engine only reads stream time, so feeding it the store's recorded samples with changed
thresholds shows exactly which alerts would have fired, and when.

Example:
    >>> from crowdwatch.alerts import AlertRule
    >>> from crowdwatch.store.records import MetricSample
    >>> samples = [MetricSample("cam", "a", float(t), {"count": c})
    ...            for t, c in enumerate([2, 6, 7, 8, 1, 1])]
    >>> rule = AlertRule(metric="count", latch_s=1, clear_latch_s=0, levels={"warning": 5})
    >>> stricter = with_thresholds(rule, {"warning": 7})
    >>> [(r.level, r.start_s, r.end_s) for r in replay_samples({"cam/a": [stricter]}, samples)]
    [('warning', 2.0, 4.0)]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from crowdwatch.alerts import AlertRecord, AlertRule, replay, zone_rules
from crowdwatch.config.schema import CameraConfig
from crowdwatch.store.records import MetricSample
from crowdwatch.venue import VenueConfig

Stream = Iterator[tuple[str, float, Mapping[str, float | None]]]


def metric_stream(samples: Iterable[MetricSample]) -> Stream:
    """The samples as the engine's ``(target, time, metrics)`` stream, in time order."""
    for sample in sorted(samples, key=lambda sample: sample.time):
        yield sample.target, sample.time, sample.values


def camera_rules(
    camera: CameraConfig, samples: Sequence[MetricSample] = ()
) -> dict[str, list[AlertRule]]:
    """Every zone's rules as the running engine uses them (``camera/zone`` -> rules).

    Zones without rules of their own get the literature density defaults when the recorded
    samples show a known area, as in :func:`crowdwatch.alerts.zone_rules`.
    """
    with_area = {
        sample.zone for sample in samples if sample.camera == camera.name and _has_area(sample)
    }
    rules = {
        f"{camera.name}/{zone.name}": zone_rules(zone.alerts, area_known=zone.name in with_area)
        for zone in camera.zones
    }
    for zone_name in with_area - {zone.name for zone in camera.zones}:
        rules[f"{camera.name}/{zone_name}"] = zone_rules([], area_known=True)
    return {target: items for target, items in rules.items() if items}


def venue_rules(venue: VenueConfig) -> dict[str, list[AlertRule]]:
    """The venue's zones' and gates' rules as the venue's alert engine uses them
    (``venue/zone`` -> rules; a zone without rules of its own gets the density defaults, its
    area being known)."""
    rules = {
        f"{venue.name}/{zone.name}": zone_rules(zone.alerts, area_known=True)
        for zone in venue.zones
    }
    rules.update({f"{venue.name}/{gate.name}": list(gate.alerts) for gate in venue.gates})
    return {target: items for target, items in rules.items() if items}


def with_thresholds(rule: AlertRule, thresholds: Mapping[str, float]) -> AlertRule:
    """A copy of ``rule`` with new thresholds for some levels (``level`` -> threshold).

    Each changed level's ``clear`` is recomputed from the rule's hysteresis unless the level set
    its own clear that still lies on the right side of the new threshold. Validation errors
    (thresholds out of order) name the levels.
    """
    unknown = sorted(set(thresholds) - set(rule.levels))
    if unknown:
        raise KeyError(f"rule {rule.label!r} has no level(s) {unknown}; it has {list(rule.levels)}")
    data = rule.model_dump()
    for level, threshold in thresholds.items():
        entry = dict(data["levels"][level])
        entry["threshold"] = float(threshold)
        clear = entry.get("clear")
        if clear is not None and (clear > threshold if rule.rising else clear < threshold):
            entry["clear"] = None
        data["levels"][level] = entry
    return AlertRule.model_validate(data)


def replay_samples(
    rules: Mapping[str, Sequence[AlertRule]], samples: Iterable[MetricSample]
) -> list[AlertRecord]:
    """The alerts the rules would have raised on the recorded samples (times in epoch seconds)."""
    return replay(rules, metric_stream(samples))


def _has_area(sample: MetricSample) -> bool:
    area = sample.values.get("area_m2")
    return area is not None and area > 0
