"""Condensed review: play calm periods fast and slow down around alerts and rapid rises, the
way video-management review condenses an hour into minutes.

Example:
    >>> from crowdwatch.store.records import MetricSample
    >>> samples = [MetricSample("cam", "a", float(t), {"count": c})
    ...            for t, c in enumerate([1, 1, 1, 1, 9, 9])]
    >>> spans = busy_spans(samples, [], lead_s=1, tail_s=1)
    >>> spans
    [(3.0, 6.0)]
    >>> condensed_step(0.0, spans, 1.0), condensed_step(3.5, spans, 1.0)  # calm: up to the rise
    (3.0, 1.0)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from crowdwatch.store.records import MetricSample, StoredAlert

#: How much faster than the chosen speed calm periods play.
CALM_FACTOR = 10
#: A rise of the count by this many people (and this share) within RISE_WINDOW_S is "rapid".
RISE_PEOPLE = 3.0
RISE_SHARE = 0.3
RISE_WINDOW_S = 10.0


def busy_spans(
    samples: Sequence[MetricSample],
    alerts: Sequence[StoredAlert],
    lead_s: float = 10.0,
    tail_s: float = 10.0,
) -> list[tuple[float, float]]:
    """Merged time spans worth watching at normal speed: every alert from ``lead_s`` before it
    opened to ``tail_s`` after it closed, and every rapid rise of a zone's count."""
    spans = [
        (alert.start - lead_s, (alert.end if alert.end is not None else alert.updated) + tail_s)
        for alert in alerts
    ]
    by_zone: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for sample in samples:
        count = sample.value("count")
        if sample.kind == "zone" and count is not None:
            by_zone[(sample.camera, sample.zone)].append((sample.time, count))
    for series in by_zone.values():
        series.sort()
        first = 0
        for when, count in series:
            while series[first][0] < when - RISE_WINDOW_S:
                first += 1
            low = min(value for _, value in series[first:] if _ <= when)
            if count - low >= max(RISE_PEOPLE, RISE_SHARE * low):
                spans.append((when - lead_s, when + tail_s))
    return _merged(spans)


def condensed_step(position: float, spans: Sequence[tuple[float, float]], step_s: float) -> float:
    """Seconds to move on from ``position``: ``step_s`` inside a busy span, ``CALM_FACTOR``
    times that outside, never jumping over the start of the next busy span."""
    for start, end in spans:
        if start <= position <= end:
            return step_s
    fast = step_s * CALM_FACTOR
    upcoming = [start for start, _ in spans if start > position]
    if upcoming:
        fast = min(fast, max(upcoming[0] - position, step_s))
    return fast


def _merged(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
