"""Alert records and the events that report their life: opened, closed, acknowledged."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass
from typing import Any, Literal

EventKind = Literal["opened", "closed", "acknowledged"]
EndReason = Literal["cleared", "stream_end"]


def _json_safe(value: Any) -> Any:
    # JSON has no infinity; a forecast of "never" (inf minutes) is stored as null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def split_target(target: str) -> tuple[str, str]:
    """Split a ``"camera/zone"`` (or ``"camera/line"``) target id into its two parts.

    A target without a slash is a zone of an unnamed camera.

    Example:
        >>> split_target("gate-cam/north")
        ('gate-cam', 'north')
        >>> split_target("hall")
        ('', 'hall')
    """
    camera, slash, zone = target.partition("/")
    return (camera, zone) if slash else ("", target)


def alert_id(target: str, rule: str, level: str, start_s: float, run: str = "") -> str:
    """A short id that depends only on what the alert is (and which run raised it), so
    replays give the same ids while two runs over one recording never share one.

    Example:
        >>> alert_id("cam/a", "density", "warning", 12.0)
        '61d3a662108b06b3'
        >>> alert_id("cam/a", "density", "warning", 12.0, run="analyze-1") != _
        True
    """
    key = f"{target}\n{rule}\n{level}\n{start_s:.6f}"
    if run:
        key += f"\n{run}"
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


@dataclass
class AlertRecord:
    """One alert: a level of a rule that held on a target from ``start_s`` to ``end_s``.

    Times are the stream's own seconds (video time for files), never the wall clock.

    Attributes:
        id: deterministic short id (see :func:`alert_id`).
        target: ``"camera/zone"`` or ``"camera/line"``; ``camera`` and ``zone`` are its parts
            (``zone`` holds the line name for line targets).
        rule: the rule's label (its name, or its metric).
        metric: the metric watched, e.g. ``"density"``.
        level: ``"advisory"``, ``"warning"`` or ``"critical"``.
        direction: ``"rising"`` or ``"falling"``.
        threshold, clear: the level's thresholds when it fired.
        value: the metric when the alert opened; ``peak``: its worst value while open (highest
            for rising rules, lowest for falling ones).
        start_s: when the condition began to hold; ``opened_s``: when the latch ran out and the
            alert opened.
        end_s: when the metric went clear (``None`` while open); ``closed_s``: when the clear
            latch ran out and the alert closed; ``end_reason``: ``"cleared"`` or ``"stream_end"``.
        acknowledged_by, acknowledged_s, acknowledged_note: operator acknowledgement.
        snapshot: path of a frame saved when the alert opened, filled in by the pipeline.
    """

    id: str
    target: str
    camera: str
    zone: str
    rule: str
    metric: str
    level: str
    direction: str
    threshold: float
    clear: float
    value: float
    peak: float
    start_s: float
    opened_s: float
    end_s: float | None = None
    closed_s: float | None = None
    end_reason: EndReason | None = None
    acknowledged_by: str | None = None
    acknowledged_s: float | None = None
    acknowledged_note: str | None = None
    snapshot: str | None = None

    @property
    def is_open(self) -> bool:
        """True until the alert has closed."""
        return self.closed_s is None

    @property
    def acknowledged(self) -> bool:
        """True once an operator acknowledged the alert."""
        return self.acknowledged_by is not None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dictionary of every field (an infinite value becomes None)."""
        return {key: _json_safe(value) for key, value in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlertRecord:
        """Rebuild a record from :meth:`to_dict` output; unknown keys are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})

    def copy(self) -> AlertRecord:
        """An independent copy (records inside the engine keep changing while open)."""
        return dataclasses.replace(self)


@dataclass(frozen=True)
class AlertEvent:
    """Something happened to an alert at stream time ``time_s``.

    ``record`` is a snapshot taken when the event happened; later changes to the alert do not
    show in it.
    """

    kind: EventKind
    record: AlertRecord
    time_s: float

    @property
    def event_id(self) -> str:
        """Unique per alert and kind, so receivers can drop duplicate deliveries."""
        return f"{self.record.id}:{self.kind}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form: ``{"event_id", "kind", "time_s", "alert": {...}}``."""
        return {
            "event_id": self.event_id,
            "kind": self.kind,
            "time_s": self.time_s,
            "alert": self.record.to_dict(),
        }
