"""Plain records the store reads and writes.

Every time in the store is wall-clock time in UTC epoch seconds (a float), whatever the source:
video time of a recorded file is mapped to wall time with the run's start time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

CameraState = Literal["starting", "live", "reconnecting", "stalled", "stopped", "failed"]
Role = Literal["operator", "viewer"]
RecordingKind = Literal["segment", "snapshot"]
RunKind = Literal["analyze", "engine"]
WebhookState = Literal["pending", "delivered", "abandoned"]

CAMERA_STATES: tuple[str, ...] = (
    "starting",
    "live",
    "reconnecting",
    "stalled",
    "stopped",
    "failed",
)
ROLES: tuple[str, ...] = ("operator", "viewer")
RUN_KINDS: tuple[str, ...] = ("analyze", "engine")


@dataclass(frozen=True)
class MetricSample:
    """The metrics of one target (a zone or a counting line) at one moment.

    ``values`` maps metric names (``count``, ``density``, ``occupancy``, ``area_m2`` for zones;
    whatever other stages add, e.g. ``flow_in``) to numbers, None when unknown. ``run_id`` names
    the run that measured it (see :meth:`SqlStore.start_run`), None when unknown.

    Example:
        >>> sample = MetricSample("gate", "north", 1_700_000_000.0, {"count": 12.0})
        >>> sample.target
        'gate/north'
    """

    camera: str
    zone: str
    time: float
    values: dict[str, float | None]
    kind: str = "zone"
    frame_index: int | None = None
    level: str = "normal"
    run_id: str | None = None

    @property
    def target(self) -> str:
        """``camera/zone``, the alert engine's id for the target."""
        return f"{self.camera}/{self.zone}"

    def value(self, name: str) -> float | None:
        """One metric, None when absent or unknown."""
        return self.values.get(name)


@dataclass(frozen=True)
class StoredAlert:
    """An alert as the store holds it: the alert record's fields (times in epoch seconds).

    ``record`` is the full :meth:`AlertRecord.to_dict` (with wall times), for anything the
    columns do not carry; ``run_id`` the run that wrote it (None before schema 2).
    """

    id: str
    camera: str
    zone: str
    rule: str
    metric: str
    level: str
    value: float | None
    peak: float | None
    start: float
    opened: float
    end: float | None
    closed: float | None
    acknowledged_by: str | None
    acknowledged_at: float | None
    acknowledged_note: str | None
    snapshot: str | None
    updated: float
    record: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None

    @property
    def is_open(self) -> bool:
        """True until the alert has closed."""
        return self.closed is None

    @property
    def acknowledged(self) -> bool:
        """True once an operator acknowledged it."""
        return self.acknowledged_by is not None


@dataclass(frozen=True)
class AlertAction:
    """Something an operator did to an alert (``acknowledged``), and when."""

    alert_id: str
    action: str
    operator: str
    note: str
    time: float


@dataclass(frozen=True)
class CameraHealth:
    """A camera's current state as its worker last reported it.

    Attributes:
        state: ``starting``, ``live``, ``reconnecting``, ``stalled``, ``stopped`` or ``failed``.
        analysis_fps: frames analysed per second over the last few seconds.
        target_fps: the configured analysis rate (None: as fast as possible).
        analysed_frames, skipped_frames: frames analysed, and frames read but skipped so that
            analysis stays at the live edge.
        last_frame_time: wall time of the last analysed frame.
        reconnects: times the stream came back after a drop.
        error: the last problem, if any.
        updated: when this was written.
    """

    camera: str
    state: str
    analysis_fps: float = 0.0
    target_fps: float | None = None
    analysed_frames: int = 0
    skipped_frames: int = 0
    last_frame_time: float | None = None
    reconnects: int = 0
    error: str | None = None
    updated: float = 0.0


@dataclass(frozen=True)
class CameraEvent:
    """A change of a camera's state (kept as history, so gaps in its coverage can be found)."""

    camera: str
    time: float
    state: str
    detail: str = ""


@dataclass(frozen=True)
class Gap:
    """A time span in which a camera was not analysing (its stream was down or stalled)."""

    camera: str
    start: float
    end: float | None
    reason: str

    @property
    def duration(self) -> float:
        """Seconds; infinite while the gap is still open."""
        return math.inf if self.end is None else self.end - self.start


@dataclass(frozen=True)
class ConfigVersion:
    """One saved version of the event configuration (``config`` is its plain dict form)."""

    version: int
    time: float
    author: str
    note: str
    config: dict[str, Any]


@dataclass(frozen=True)
class ConfigChange:
    """One value that changed between two config versions.

    ``path`` names the value, with list items that have a name keyed by it, e.g.
    ``cameras[plaza].zones[road].alerts[0].levels.warning``. ``old`` is None for an added
    value and ``new`` None for a removed one.
    """

    version: int
    time: float
    author: str
    path: str
    old: Any
    new: Any


@dataclass(frozen=True)
class RecordingEntry:
    """One recorded file of a camera: a video segment or a heat-map snapshot.

    ``path`` is relative to the recording root (an absolute path, or one that leads out of the
    root, is refused wherever it is used). ``status`` is ``ok``, or what is
    wrong with it (``corrupt``, ``missing``).
    """

    camera: str
    kind: str
    start: float
    end: float
    path: str
    bytes: int = 0
    status: str = "ok"


@dataclass(frozen=True)
class AuditEntry:
    """One operator action: who did what to which thing, and when."""

    time: float
    actor: str
    action: str
    target: str
    detail: dict[str, Any] = field(default_factory=dict)
    id: int | None = None


@dataclass(frozen=True)
class User:
    """A console user. Only a password hash is stored, never the password."""

    name: str
    role: str
    password_hash: str
    created: float = 0.0


@dataclass(frozen=True)
class Retention:
    """How long the store keeps things, in days (None: forever).

    Open alerts are never pruned; recordings are pruned by the recorder's disk quota.
    """

    metrics_days: float | None = 30.0
    alerts_days: float | None = 365.0
    health_days: float | None = 30.0
    audit_days: float | None = None


@dataclass(frozen=True)
class Run:
    """One analysis (``analyze``) or live engine (``engine``) run that wrote into the store.

    Its id is on every metrics sample and alert it wrote, so that two runs over the same camera
    are told apart. ``camera`` is None for a run over several cameras; ``ended`` None while it
    runs (or when it was killed); ``config_hash`` and ``model`` say what produced its numbers.
    """

    id: str
    camera: str | None
    kind: str
    started: float
    ended: float | None = None
    source: str | None = None
    config_hash: str | None = None
    model: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Lease:
    """Who holds a store's engine lease (``owner``, e.g. ``host:pid``), since when, and when it
    last renewed it (``heartbeat``); it lapses ``ttl_s`` seconds after the last heartbeat."""

    name: str
    owner: str
    since: float
    heartbeat: float
    ttl_s: float


@dataclass(frozen=True)
class WebhookDelivery:
    """A webhook POST kept in the store's outbox until it is delivered or given up.

    ``state`` is ``pending`` (due at ``next_try``), ``delivered`` or ``abandoned``; ``attempts``
    counts the tries so far, ``last_error`` says why the last one failed, ``done`` when it was
    delivered or given up.
    """

    id: int
    url: str
    event_id: str
    body: bytes
    created: float
    next_try: float
    attempts: int = 0
    state: str = "pending"
    last_error: str | None = None
    done: float | None = None
