"""The store on SQL: one implementation for SQLite (the default) and PostgreSQL.

Every statement is built with SQLAlchemy Core from the tables of :mod:`crowdwatch.store.schema`
(upserts with the dialect's ``INSERT ... ON CONFLICT``), and every row is read by column name.
The schema is brought to the newest revision by the Alembic migrations of
:mod:`crowdwatch.store.migrations` when the store opens. Every public method is one transaction,
guarded by a lock, so camera worker threads can share one store object.
"""

from __future__ import annotations

import dataclasses
import json
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    Table,
    case,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, processors
from sqlalchemy.exc import DBAPIError

from crowdwatch.errors import CrowdwatchError
from crowdwatch.store import schema
from crowdwatch.store.diff import diff
from crowdwatch.store.migrations import NewerStoreError, is_current, upgrade
from crowdwatch.store.records import (
    CAMERA_STATES,
    ROLES,
    RUN_KINDS,
    AlertAction,
    AuditEntry,
    CameraEvent,
    CameraHealth,
    ConfigChange,
    ConfigVersion,
    Gap,
    Lease,
    MetricSample,
    RecordingEntry,
    Retention,
    Run,
    StoredAlert,
    User,
    WebhookDelivery,
)

# The schema version (``meta.schema_version``): the number of the newest migration revision.
SCHEMA_VERSION = len(schema.REVISIONS)
# Metrics every zone has get their own columns (fast to query and aggregate); anything else a
# stage adds (line flow, pressure, ...) goes into the ``extra`` JSON column.
CORE_METRICS = ("count", "density", "occupancy", "area_m2")
DAY_S = 86400.0
ENGINE_LEASE = "engine"

R = TypeVar("R")


class StoreError(CrowdwatchError, RuntimeError):
    """The store cannot do what was asked (bad target, a schema from a newer crowdwatch, a
    database error); the message names the store."""


class SqlStore:
    """Metrics, alerts, camera health, config versions, recordings, audit log and users; runs,
    the engine lease and the webhook outbox.

    Open one with :func:`crowdwatch.store.open_store`. Times are UTC epoch seconds.

    Example:
        >>> from crowdwatch.store import open_store, MetricSample
        >>> store = open_store(":memory:")
        >>> store.write_metrics([MetricSample("gate", "north", 1e9, {"count": 3.0})])
        1
        >>> [s.values["count"] for s in store.latest_metrics("gate")]
        [3.0]
        >>> store.close()
    """

    def __init__(self, engine: Engine, url: str, target: str | None = None) -> None:
        self._engine: Engine | None = engine
        self.url = url
        self._target = target or url
        self._lock = threading.RLock()
        self._sqlite = engine.dialect.name == "sqlite"
        self._driver_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        self._sql = _Statements(
            sqlite.insert if self._sqlite else postgresql.insert, engine.dialect
        )
        # One connection, like the store always had: every method is one transaction on it,
        # serialised by the lock (a dropped PostgreSQL connection is replaced on next use).
        self._connection: Connection | None = engine.connect()
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def dialect(self) -> Any:
        """The SQLAlchemy dialect (``.name`` is ``sqlite`` or ``postgresql``)."""
        return self._engine_or_raise().dialect

    def url_for_workers(self) -> str:
        """What another process opens to reach this store (with credentials: never log it)."""
        return self._target

    @property
    def folder(self) -> Path | None:
        """The folder of a SQLite store's file (relative paths in the store start there);
        None for PostgreSQL and in-memory stores."""
        if not self._sqlite or self._target == ":memory:":
            return None
        return Path(self._target).parent

    def close(self) -> None:
        """Close the connections; safe to call twice."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- metrics ---------------------------------------------------------------------------

    def write_metrics(self, samples: Iterable[MetricSample], run_id: str | None = None) -> int:
        """Write a batch of samples in one transaction; a sample at an existing
        (camera, zone, kind, time) replaces it. ``run_id`` is given to samples without one.
        Returns how many were written."""
        rows = [_metric_row(sample, run_id) for sample in samples]
        if not rows:
            return 0
        with self._transaction() as connection:
            self._sql.metrics_upsert.execute(connection, rows)
            self._sql.latest_upsert.execute(connection, _latest_rows(rows))
        return len(rows)

    def metrics(
        self,
        camera: str | None = None,
        zone: str | None = None,
        start: float | None = None,
        end: float | None = None,
        kind: str | None = None,
        limit: int | None = None,
        run_id: str | None = None,
    ) -> list[MetricSample]:
        """Samples in time order, filtered by camera, zone, kind, run and
        ``start <= time <= end``."""
        t = schema.metrics
        query = _where(
            select(t),
            _equal(t, camera=camera, zone=zone, kind=kind, run_id=run_id),
            _range(t.c.time, start, end),
        ).order_by(t.c.time, t.c.camera, t.c.zone)
        return self._read(query.limit(limit) if limit is not None else query, _metric_sample)

    def latest_metrics(
        self, camera: str | None = None, run_id: str | None = None
    ) -> list[MetricSample]:
        """The newest sample of every target (of one camera, or of all; with ``run_id``, the
        targets whose newest sample that run wrote)."""
        t = schema.latest_metrics
        query = _where(select(t), _equal(t, camera=camera, run_id=run_id))
        return self._read(query.order_by(t.c.camera, t.c.kind, t.c.zone), _metric_sample)

    def metric_series(
        self,
        camera: str,
        zone: str,
        metric: str,
        start: float | None = None,
        end: float | None = None,
        bucket_s: float | None = None,
        run_id: str | None = None,
    ) -> list[tuple[float, float | None]]:
        """``(time, value)`` of one metric of one target; with ``bucket_s``, the mean of
        each bucket (at the bucket's start), for charts of long time ranges."""
        samples = self.metrics(camera, zone, start, end, run_id=run_id)
        points = [(s.time, s.value(metric)) for s in samples]
        if not bucket_s:
            return points
        return _bucketed(points, bucket_s)

    # -- alerts ----------------------------------------------------------------------------

    def upsert_alert(
        self, record: Any, now: float | None = None, run_id: str | None = None
    ) -> None:
        """Insert or update an alert from an :class:`~crowdwatch.alerts.AlertRecord` (or its
        ``to_dict()``) whose times are epoch seconds; ``run_id`` (or the record's ``run_id``)
        names the run that raised it.

        An acknowledgement already in the store is kept when the record has none (the
        analysis engine does not know about acknowledgements made in the console); so is the
        run id.
        """
        data = record.to_dict() if hasattr(record, "to_dict") else dict(record)
        _require(data, ("id", "camera", "zone", "rule", "metric", "level", "start_s", "opened_s"))
        row = {
            "id": data["id"],
            "camera": data["camera"],
            "zone": data["zone"],
            "rule": data["rule"],
            "metric": data["metric"],
            "level": data["level"],
            "value": _finite(data.get("value")),
            "peak": _finite(data.get("peak")),
            "start_time": data["start_s"],
            "opened": data["opened_s"],
            "end_time": data.get("end_s"),
            "closed": data.get("closed_s"),
            "acknowledged_by": data.get("acknowledged_by"),
            "acknowledged_at": data.get("acknowledged_s"),
            "acknowledged_note": data.get("acknowledged_note"),
            "snapshot": data.get("snapshot"),
            "updated": time.time() if now is None else now,
            "record": json.dumps(data, allow_nan=False, default=_json_default),
            "run_id": run_id or data.get("run_id"),
        }
        # One statement: atomic by itself, it needs no BEGIN of its own.
        with self._transaction(write=False) as connection:
            self._sql.alert_upsert.execute(connection, [row])

    def alert(self, alert_id: str) -> StoredAlert | None:
        """One alert by id, or None."""
        t = schema.alerts
        found = self._read(select(t).where(t.c.id == alert_id), _stored_alert)
        return found[0] if found else None

    def alerts(
        self,
        active: bool | None = None,
        camera: str | None = None,
        zone: str | None = None,
        level: str | None = None,
        acknowledged: bool | None = None,
        start: float | None = None,
        end: float | None = None,
        limit: int | None = None,
        run_id: str | None = None,
    ) -> list[StoredAlert]:
        """Alerts newest first. ``active``: only open (True) or closed (False) ones;
        ``start``/``end``: alerts that overlap that time range; ``run_id``: raised by that
        run."""
        t = schema.alerts
        conditions = _equal(t, camera=camera, zone=zone, level=level, run_id=run_id)
        if active is not None:
            conditions.append(t.c.closed.is_(None) if active else t.c.closed.is_not(None))
        if acknowledged is not None:
            by = t.c.acknowledged_by
            conditions.append(by.is_not(None) if acknowledged else by.is_(None))
        if start is not None:
            conditions.append(or_(t.c.closed.is_(None), t.c.closed >= start))
        if end is not None:
            conditions.append(t.c.opened <= end)
        query = _where(select(t), conditions).order_by(t.c.opened.desc(), t.c.id)
        return self._read(query.limit(limit) if limit is not None else query, _stored_alert)

    def active_alerts(self, camera: str | None = None) -> list[StoredAlert]:
        """Open alerts, newest first."""
        return self.alerts(active=True, camera=camera)

    def acknowledge(
        self, alert_id: str, operator: str, note: str = "", time_s: float | None = None
    ) -> AlertAction:
        """Record that ``operator`` acknowledged an alert; also written to the audit log.

        Raises:
            KeyError: no alert has that id.
            ValueError: no operator name, or the alert was already acknowledged.
        """
        if not operator.strip():
            raise ValueError("acknowledging an alert needs the operator's name")
        when = time.time() if time_s is None else time_s
        t = schema.alerts
        with self._transaction() as connection:
            found = connection.execute(
                select(t.c.acknowledged_by).where(t.c.id == alert_id)
            ).first()
            if found is None:
                raise KeyError(f"no alert with id {alert_id!r}")
            if found.acknowledged_by is not None:
                raise ValueError(
                    f"alert {alert_id!r} was already acknowledged by {found.acknowledged_by!r}"
                )
            connection.execute(
                update(t)
                .where(t.c.id == alert_id)
                .values(
                    acknowledged_by=operator,
                    acknowledged_at=when,
                    acknowledged_note=note,
                    updated=when,
                )
            )
            action = AlertAction(alert_id, "acknowledged", operator, note, when)
            connection.execute(schema.alert_actions.insert(), dataclasses.asdict(action))
            self._insert_audit(
                connection,
                AuditEntry(when, operator, "acknowledge", f"alert:{alert_id}", {"note": note}),
            )
        return action

    def close_orphaned_alerts(self, camera: str, time_s: float, reason: str) -> int:
        """Close the camera's alerts left open by an engine that stopped without closing them
        (a crash, a kill); ``end_reason`` says why. Returns how many were closed."""
        t = schema.alerts
        with self._transaction() as connection:
            rows = connection.execute(
                select(t.c.id, t.c.record).where(t.c.camera == camera, t.c.closed.is_(None))
            ).all()
            for row in rows:
                data = {**(_loads(row.record) or {}), "closed_s": time_s, "end_reason": reason}
                data["end_s"] = data.get("end_s") or time_s
                connection.execute(
                    update(t)
                    .where(t.c.id == row.id)
                    .values(
                        closed=time_s,
                        end_time=func.coalesce(t.c.end_time, time_s),
                        updated=time_s,
                        record=json.dumps(data),
                    )
                )
        return len(rows)

    def alert_actions(self, alert_id: str | None = None) -> list[AlertAction]:
        """Operator actions on alerts (of one alert, or all), oldest first."""
        t = schema.alert_actions
        query = _where(select(t), _equal(t, alert_id=alert_id)).order_by(t.c.time, t.c.id)
        return self._read(query, _record(AlertAction))

    # -- camera health ---------------------------------------------------------------------

    def set_health(self, health: CameraHealth) -> None:
        """Write a camera's current health; a change of state is also kept as a
        :class:`CameraEvent` (with ``health.error`` as its detail)."""
        if health.state not in CAMERA_STATES:
            raise ValueError(f"unknown camera state {health.state!r}; one of {CAMERA_STATES}")
        updated = health.updated or time.time()
        row = {
            **dataclasses.asdict(health),
            "analysis_fps": float(health.analysis_fps),
            "analysed_frames": int(health.analysed_frames),
            "skipped_frames": int(health.skipped_frames),
            "reconnects": int(health.reconnects),
            "updated": updated,
        }
        t = schema.camera_health
        with self._transaction() as connection:
            previous = connection.execute(
                select(t.c.state).where(t.c.camera == health.camera)
            ).scalar()
            self._sql.health_upsert.execute(connection, [row])
            if previous != health.state:
                connection.execute(
                    schema.camera_events.insert(),
                    dataclasses.asdict(
                        CameraEvent(health.camera, updated, health.state, health.error or "")
                    ),
                )

    def health(self, camera: str | None = None) -> list[CameraHealth]:
        """Every camera's (or one camera's) last reported health, by name."""
        t = schema.camera_health
        query = _where(select(t), _equal(t, camera=camera)).order_by(t.c.camera)
        return self._read(query, _record(CameraHealth))

    def camera_events(
        self, camera: str | None = None, start: float | None = None, end: float | None = None
    ) -> list[CameraEvent]:
        """State changes of cameras in time order."""
        t = schema.camera_events
        query = _where(select(t), _equal(t, camera=camera), _range(t.c.time, start, end))
        return self._read(query.order_by(t.c.time, t.c.id), _record(CameraEvent))

    def gaps(self, camera: str, start: float | None = None, end: float | None = None) -> list[Gap]:
        """Spans in which a camera was not live (reconnecting, stalled, failed) until it came
        back or was stopped, from its state history; ``end=None`` while still going on."""
        gaps: list[Gap] = []
        opened: CameraEvent | None = None
        for event in self.camera_events(camera):
            down = event.state in ("reconnecting", "stalled", "failed")
            if down and opened is None:
                opened = event
            elif event.state in ("live", "stopped") and opened is not None:
                gaps.append(Gap(camera, opened.time, event.time, opened.state))
                opened = None
        if opened is not None:
            gaps.append(Gap(camera, opened.time, None, opened.state))
        return [
            gap
            for gap in gaps
            if (start is None or gap.end is None or gap.end >= start)
            and (end is None or gap.start <= end)
        ]

    # -- configuration versions ------------------------------------------------------------

    def save_config(
        self, config: Any, author: str, note: str = "", time_s: float | None = None
    ) -> ConfigVersion:
        """Save a new version of the event configuration (an ``EventConfig`` or its dict) and
        record each changed value against the previous version.

        Saving a config equal to the latest version saves nothing and returns the latest.
        """
        data = _config_dict(config)
        when = time.time() if time_s is None else time_s
        t = schema.config_versions
        with self._transaction() as connection:
            latest = self._latest_config(connection)
            if latest is not None and latest.config == data:
                return latest
            changes = diff(latest.config if latest else None, data)
            version = connection.execute(
                t.insert().returning(t.c.version),
                {"time": when, "author": author, "note": note, "config": json.dumps(data)},
            ).scalar_one()
            if changes:
                connection.execute(
                    schema.config_changes.insert(),
                    [
                        {
                            "version": version,
                            "time": when,
                            "author": author,
                            "path": path,
                            "old": json.dumps(old),
                            "new": json.dumps(new),
                        }
                        for path, old, new in changes
                    ],
                )
            self._insert_audit(
                connection,
                AuditEntry(
                    when,
                    author,
                    "config",
                    f"config:{version}",
                    {"note": note, "changes": len(changes)},
                ),
            )
        return ConfigVersion(int(version), when, author, note, data)

    def latest_config(self) -> ConfigVersion | None:
        """The newest configuration version, or None when none was saved."""
        with self._transaction(write=False) as connection:
            return self._latest_config(connection)

    def config_version(self, version: int) -> ConfigVersion:
        """One configuration version by number (KeyError if there is none)."""
        t = schema.config_versions
        found = self._read(select(t).where(t.c.version == version), _config_version)
        if not found:
            raise KeyError(f"no configuration version {version}")
        return found[0]

    def config_versions(self) -> list[ConfigVersion]:
        """Every configuration version, oldest first."""
        t = schema.config_versions
        return self._read(select(t).order_by(t.c.version), _config_version)

    def config_changes(
        self, since_version: int | None = None, path_prefix: str | None = None
    ) -> list[ConfigChange]:
        """Changed values, oldest first: who changed which path from what to what, and when.

        ``since_version``: only versions after that one.
        """
        t = schema.config_changes
        conditions: list[ColumnElement[bool]] = []
        if since_version is not None:
            conditions.append(t.c.version > since_version)
        if path_prefix is not None:
            conditions.append(t.c.path.startswith(path_prefix, autoescape=True))
        query = _where(select(t), conditions).order_by(t.c.version, t.c.id)
        return self._read(query, _record(ConfigChange, json_fields=("old", "new")))

    # -- recordings ------------------------------------------------------------------------

    def add_recording(self, entry: RecordingEntry) -> None:
        """Index a recorded segment or snapshot (replacing an entry with the same path)."""
        if entry.kind not in ("segment", "snapshot"):
            raise ValueError(f"recording kind must be segment or snapshot, not {entry.kind!r}")
        row = _row(entry, _RECORDING_COLUMNS)
        row["bytes"] = int(entry.bytes)
        with self._transaction() as connection:
            connection.execute(self._sql.recording_upsert, row)

    def recordings(
        self,
        camera: str | None = None,
        start: float | None = None,
        end: float | None = None,
        kind: str | None = None,
    ) -> list[RecordingEntry]:
        """Recorded files that overlap ``[start, end]``, in time order."""
        t = schema.recordings
        conditions = _equal(t, camera=camera, kind=kind)
        if start is not None:
            conditions.append(t.c.end_time >= start)
        if end is not None:
            conditions.append(t.c.start_time <= end)
        query = _where(select(t), conditions).order_by(t.c.start_time, t.c.path)
        return self._read(query, _record(RecordingEntry, _RECORDING_COLUMNS))

    def recorded_bytes(self, camera: str | None = None) -> int:
        """Total size of the indexed recordings."""
        t = schema.recordings
        query = _where(select(func.coalesce(func.sum(t.c.bytes), 0)), _equal(t, camera=camera))
        with self._transaction(write=False) as connection:
            return int(connection.execute(query).scalar_one())

    def set_recording_status(self, path: str, status: str) -> None:
        """Mark an indexed file, e.g. ``corrupt`` when it cannot be decoded."""
        t = schema.recordings
        with self._transaction() as connection:
            connection.execute(update(t).where(t.c.path == path).values(status=status))

    def remove_recording(self, path: str) -> None:
        """Drop a file from the index (the caller deletes the file)."""
        t = schema.recordings
        with self._transaction() as connection:
            connection.execute(delete(t).where(t.c.path == path))

    # -- audit log and users ---------------------------------------------------------------

    def log_action(
        self,
        actor: str,
        action: str,
        target: str,
        detail: dict[str, Any] | None = None,
        time_s: float | None = None,
    ) -> AuditEntry:
        """Append one operator action to the audit log."""
        entry = AuditEntry(
            time.time() if time_s is None else time_s, actor, action, target, detail or {}
        )
        with self._transaction() as connection:
            return self._insert_audit(connection, entry)

    def audit_log(
        self,
        start: float | None = None,
        end: float | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int | None = None,
    ) -> list[AuditEntry]:
        """Audit entries, newest first."""
        t = schema.audit_log
        query = _where(
            select(t), _equal(t, actor=actor, action=action), _range(t.c.time, start, end)
        ).order_by(t.c.time.desc(), t.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        return self._read(query, _audit_entry)

    def set_user(self, name: str, role: str, password_hash: str) -> User:
        """Create a user or change one's role and password hash (never a plain password)."""
        if not name.strip():
            raise ValueError("a user needs a name")
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; one of {ROLES}")
        if not password_hash:
            raise ValueError(f"user {name!r}: empty password hash")
        row = dataclasses.asdict(User(name, role, password_hash, time.time()))
        with self._transaction() as connection:
            connection.execute(self._sql.user_upsert, row)
        user = self.user(name)
        assert user is not None
        return user

    def user(self, name: str) -> User | None:
        """One user by name, or None."""
        t = schema.users
        found = self._read(select(t).where(t.c.name == name), _record(User))
        return found[0] if found else None

    def users(self) -> list[User]:
        """Every user, by name."""
        t = schema.users
        return self._read(select(t).order_by(t.c.name), _record(User))

    def remove_user(self, name: str) -> None:
        """Delete a user (no error if there is none)."""
        t = schema.users
        with self._transaction() as connection:
            connection.execute(delete(t).where(t.c.name == name))

    # -- runs ------------------------------------------------------------------------------

    def start_run(
        self,
        camera: str | None,
        kind: str,
        source: str | None = None,
        config_hash: str | None = None,
        model: str | None = None,
        detail: dict[str, Any] | None = None,
        started: float | None = None,
        run_id: str | None = None,
    ) -> str:
        """Record the start of an ``analyze`` or ``engine`` run (of one camera, or None for
        several) and return its id, for :meth:`write_metrics` and :meth:`upsert_alert`.

        The id is ``<kind>-<UTC start>-<random>`` unless given (an existing id is refused).
        """
        if kind not in RUN_KINDS:
            raise ValueError(f"unknown run kind {kind!r}; one of {RUN_KINDS}")
        started = time.time() if started is None else started
        if run_id is None:
            stamp = datetime.fromtimestamp(started, UTC).strftime("%Y%m%dT%H%M%SZ")
            run_id = f"{kind}-{stamp}-{secrets.token_hex(4)}"
        run = Run(run_id, camera, kind, started, None, source, config_hash, model, detail or {})
        row = {**dataclasses.asdict(run), "detail": json.dumps(run.detail, default=_json_default)}
        t = schema.runs
        with self._transaction() as connection:
            if connection.execute(select(t.c.id).where(t.c.id == run_id)).first() is not None:
                raise ValueError(f"a run with id {run_id!r} is already in the store")
            connection.execute(t.insert(), row)
        return run_id

    def end_run(self, run_id: str, ended: float | None = None) -> None:
        """Record that a run ended (now, unless ``ended`` is given).

        Raises:
            KeyError: no run has that id.
        """
        t = schema.runs
        with self._transaction() as connection:
            result = connection.execute(
                update(t)
                .where(t.c.id == run_id)
                .values(ended=time.time() if ended is None else ended)
            )
            if result.rowcount == 0:
                raise KeyError(f"no run with id {run_id!r}")

    def run(self, run_id: str) -> Run | None:
        """One run by id, or None."""
        t = schema.runs
        found = self._read(select(t).where(t.c.id == run_id), _record(Run, json_fields=["detail"]))
        return found[0] if found else None

    def runs(self, camera: str | None = None) -> list[Run]:
        """Runs (of one camera, or all), newest first."""
        t = schema.runs
        query = _where(select(t), _equal(t, camera=camera))
        query = query.order_by(t.c.started.desc(), t.c.id)
        return self._read(query, _record(Run, json_fields=["detail"]))

    # -- the engine lease ------------------------------------------------------------------

    def acquire_lease(self, owner: str, ttl_s: float, now: float | None = None) -> Lease:
        """Take the store's engine lease for ``owner`` (e.g. ``host:pid``), so that one engine
        at a time writes the store. A lease whose heartbeat is older than ``ttl_s`` (an engine
        that was killed) is taken over; the holder taking it again keeps its ``since``. Renew it
        with :meth:`renew_lease` well within ``ttl_s``.

        Atomic: of two engines acquiring at once, exactly one wins.

        Raises:
            StoreError: another owner holds a fresh lease (the message names it and since when).
        """
        if not owner:
            raise ValueError("a lease needs an owner")
        if not ttl_s > 0:
            raise ValueError(f"lease ttl must be positive, not {ttl_s}")
        now = time.time() if now is None else now
        t = schema.leases
        insert = self._sql.insert(t).values(
            name=ENGINE_LEASE, owner=owner, since=now, heartbeat=now, ttl_s=float(ttl_s)
        )
        excluded = insert.excluded
        statement = insert.on_conflict_do_update(
            index_elements=[t.c.name],
            set_={
                "owner": excluded.owner,
                "since": case((t.c.owner == excluded.owner, t.c.since), else_=excluded.since),
                "heartbeat": excluded.heartbeat,
                "ttl_s": excluded.ttl_s,
            },
            where=or_(t.c.owner == excluded.owner, t.c.heartbeat < now - ttl_s),
        ).returning(*t.c)
        with self._transaction() as connection:
            row = connection.execute(statement).first()
            if row is None:
                holder = connection.execute(select(t).where(t.c.name == ENGINE_LEASE)).first()
                raise StoreError(self._lease_held(_record(Lease)(holder), now))
        return _record(Lease)(row)

    def renew_lease(self, owner: str, now: float | None = None) -> Lease:
        """Renew the engine lease that ``owner`` holds (its heartbeat).

        Raises:
            StoreError: ``owner`` does not hold it (it lapsed and another engine took it over).
        """
        now = time.time() if now is None else now
        t = schema.leases
        with self._transaction() as connection:
            row = connection.execute(
                update(t)
                .where(t.c.name == ENGINE_LEASE, t.c.owner == owner)
                .values(heartbeat=now)
                .returning(*t.c)
            ).first()
            if row is None:
                holder = connection.execute(select(t).where(t.c.name == ENGINE_LEASE)).first()
                taken = (
                    "nobody holds it now"
                    if holder is None
                    else self._lease_held(_record(Lease)(holder), now)
                )
                raise StoreError(f"{owner} lost the engine lease of store {self.url}: {taken}")
        return _record(Lease)(row)

    def release_lease(self, owner: str) -> bool:
        """Give up the engine lease if ``owner`` holds it; returns whether it did."""
        t = schema.leases
        with self._transaction() as connection:
            result = connection.execute(
                delete(t).where(t.c.name == ENGINE_LEASE, t.c.owner == owner)
            )
            return result.rowcount > 0

    def lease(self) -> Lease | None:
        """Who holds the engine lease (fresh or stale), or None."""
        t = schema.leases
        found = self._read(select(t).where(t.c.name == ENGINE_LEASE), _record(Lease))
        return found[0] if found else None

    def _lease_held(self, holder: Lease, now: float) -> str:
        since = datetime.fromtimestamp(holder.since, UTC).isoformat(timespec="seconds")
        return (
            f"store {self.url} is in use by engine {holder.owner} since {since} (last heartbeat "
            f"{max(now - holder.heartbeat, 0):.0f} s ago); stop that engine first, or wait "
            f"{holder.ttl_s:.0f} s after it stopped for its lease to lapse"
        )

    # -- the webhook outbox ----------------------------------------------------------------

    def enqueue_webhook(
        self, url: str, body: bytes | str, event_id: str, now: float | None = None
    ) -> int:
        """Keep a webhook POST of ``body`` to ``url`` until it is delivered; returns its id.

        The same ``event_id`` to the same URL is queued once (the id of the first is returned),
        so an event replayed after a restart is not posted twice.
        """
        payload = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        now = time.time() if now is None else now
        t = schema.webhook_outbox
        insert = self._sql.insert(t).values(
            url=url,
            event_id=event_id,
            body=payload,
            created=now,
            next_try=now,
            attempts=0,
            state="pending",
        )
        statement = insert.on_conflict_do_nothing(index_elements=[t.c.url, t.c.event_id])
        with self._transaction() as connection:
            found = connection.execute(statement.returning(t.c.id)).scalar()
            if found is None:
                found = connection.execute(
                    select(t.c.id).where(t.c.url == url, t.c.event_id == event_id)
                ).scalar_one()
        return int(found)

    def due_webhooks(
        self, url: str | None = None, now: float | None = None, limit: int = 100
    ) -> list[WebhookDelivery]:
        """Pending deliveries whose next try is due (of one URL, or all), oldest first."""
        now = time.time() if now is None else now
        t = schema.webhook_outbox
        query = _where(
            select(t), [*_equal(t, url=url), t.c.state == "pending", t.c.next_try <= now]
        )
        query = query.order_by(t.c.next_try, t.c.id).limit(limit)
        return self._read(query, _webhook)

    def webhook(self, delivery_id: int) -> WebhookDelivery | None:
        """One delivery of the outbox by id (in any state), or None."""
        t = schema.webhook_outbox
        found = self._read(select(t).where(t.c.id == delivery_id), _webhook)
        return found[0] if found else None

    def mark_webhook_delivered(self, delivery_id: int, now: float | None = None) -> None:
        """The receiver took it: it leaves the queue (KeyError if there is no such delivery)."""
        done = time.time() if now is None else now
        self._update_webhook(delivery_id, state="delivered", done=done)

    def mark_webhook_failed(self, delivery_id: int, next_try: float, error: str) -> None:
        """A try failed with ``error``: try again at ``next_try`` (epoch seconds)."""
        self._update_webhook(delivery_id, next_try=next_try, last_error=error)

    def give_up_webhook(self, delivery_id: int, error: str, now: float | None = None) -> None:
        """Stop trying (after too many failures); kept with ``error`` as ``abandoned``."""
        done = time.time() if now is None else now
        self._update_webhook(delivery_id, state="abandoned", last_error=error, done=done)

    def _update_webhook(self, delivery_id: int, **values: Any) -> None:
        t = schema.webhook_outbox
        with self._transaction() as connection:
            result = connection.execute(
                update(t).where(t.c.id == delivery_id).values(attempts=t.c.attempts + 1, **values)
            )
            if result.rowcount == 0:
                raise KeyError(f"no webhook delivery with id {delivery_id}")

    # -- retention -------------------------------------------------------------------------

    def prune(self, retention: Retention, now: float | None = None) -> dict[str, int]:
        """Delete what is older than the retention periods; returns rows deleted per table.

        Open alerts and pending webhook deliveries are kept however old.
        """
        now = time.time() if now is None else now
        alerts, outbox = schema.alerts, schema.webhook_outbox
        plan: list[tuple[Table, Any, float | None, list[ColumnElement[bool]]]] = [
            (schema.metrics, schema.metrics.c.time, retention.metrics_days, []),
            (alerts, alerts.c.closed, retention.alerts_days, [alerts.c.closed.is_not(None)]),
            (schema.alert_actions, schema.alert_actions.c.time, retention.alerts_days, []),
            (schema.camera_events, schema.camera_events.c.time, retention.health_days, []),
            (schema.audit_log, schema.audit_log.c.time, retention.audit_days, []),
            (outbox, outbox.c.done, retention.alerts_days, [outbox.c.state != "pending"]),
        ]
        deleted: dict[str, int] = {}
        with self._transaction() as connection:
            for table, column, days, extra in plan:
                if days is None:
                    continue
                result = connection.execute(
                    delete(table).where(column < now - days * DAY_S, *extra)
                )
                deleted[table.name] = max(result.rowcount, 0)
        return deleted

    # -- plumbing --------------------------------------------------------------------------

    def _engine_or_raise(self) -> Engine:
        if self._engine is None:
            raise StoreError(f"store {self.url} is closed")
        return self._engine

    @contextmanager
    def _transaction(self, write: bool = True) -> Iterator[Connection]:
        """One transaction; on SQLite, a write transaction takes the write lock at its start
        (``BEGIN IMMEDIATE``), so that a read-then-write never fails on a concurrent writer.
        Without ``write``, each statement commits by itself on SQLite (for reads, and for a
        single write statement)."""
        with self._lock:
            connection = self._connection
            if connection is None:
                raise StoreError(f"store {self.url} is closed")
            try:
                with connection.begin():
                    if write and self._sqlite:
                        _driver_execute(connection, "BEGIN IMMEDIATE")
                    yield connection
            except DBAPIError as error:
                raise StoreError(f"store {self.url}: {_reason(error)}") from error
            except self._driver_error as error:
                # From a statement run on the driver's cursor (_Compiled): as SQLAlchemy
                # would, drop a connection the server closed (the next call opens another).
                if self.dialect.is_disconnect(error, None, None) and not connection.closed:
                    connection.invalidate(error)
                raise StoreError(f"store {self.url}: {' '.join(str(error).split())}") from error

    def _read(self, query: Select[Any], make: Callable[[Any], R]) -> list[R]:
        with self._transaction(write=False) as connection:
            return [make(row) for row in connection.execute(query)]

    def _migrate(self) -> None:
        """Bring the schema to the newest revision (under the write lock, once)."""
        connection = self._connection
        assert connection is not None
        try:
            with self._lock:
                with connection.begin():
                    if is_current(connection):
                        return
                with connection.begin():
                    if self._sqlite:
                        connection.exec_driver_sql("BEGIN IMMEDIATE")
                    upgrade(connection)
        except NewerStoreError as error:
            raise StoreError(
                f"store {self.url} has {error}, newer than this crowdwatch understands "
                f"({SCHEMA_VERSION}, revision {schema.HEAD}); upgrade crowdwatch"
            ) from error

    def _latest_config(self, connection: Connection) -> ConfigVersion | None:
        t = schema.config_versions
        row = connection.execute(select(t).order_by(t.c.version.desc()).limit(1)).first()
        return _config_version(row) if row else None

    def _insert_audit(self, connection: Connection, entry: AuditEntry) -> AuditEntry:
        t = schema.audit_log
        row = dataclasses.asdict(entry)
        del row["id"]
        row["detail"] = json.dumps(entry.detail, default=_json_default)
        new_id = connection.execute(t.insert().returning(t.c.id), row).scalar_one()
        return dataclasses.replace(entry, id=int(new_id))


class _Statements:
    """Statements built once per store from the table definitions. The upserts of the hot
    paths (a frame's metrics, an alert, a camera's health) are also compiled once
    (:class:`_Compiled`)."""

    def __init__(self, insert: Callable[[Table], Any], dialect: Dialect) -> None:
        self.insert = insert
        self.metrics_upsert = _Compiled(_upsert(insert, schema.metrics), dialect)
        latest = insert(schema.latest_metrics)
        self.latest_upsert = _Compiled(
            latest.on_conflict_do_update(
                index_elements=list(schema.latest_metrics.primary_key),
                set_=_excluded(latest, schema.latest_metrics),
                where=latest.excluded.time >= schema.latest_metrics.c.time,
            ),
            dialect,
        )
        # What the analysis engine does not know (acknowledgements made in the console, the
        # snapshot, the run) is kept when an update lacks it.
        keep = ("acknowledged_by", "acknowledged_at", "acknowledged_note", "snapshot", "run_id")
        self.alert_upsert = _Compiled(_upsert(insert, schema.alerts, keep=keep), dialect)
        self.health_upsert = _Compiled(_upsert(insert, schema.camera_health), dialect)
        self.recording_upsert = _upsert(insert, schema.recordings)
        users = insert(schema.users)
        self.user_upsert = users.on_conflict_do_update(
            index_elements=list(schema.users.primary_key),
            set_={"role": users.excluded.role, "password_hash": users.excluded.password_hash},
        )


class _Compiled:
    """A statement compiled once for the store's database, run with the driver's
    ``executemany``: each row's values are taken by the bind names SQLAlchemy compiled
    (the column names), in the order it compiled them.

    This skips SQLAlchemy's per-call statement caching and parameter processing, which cost
    more than the SQLite write itself on the hot paths; so it is only for statements whose
    parameters need no processing by their type (checked here).
    """

    def __init__(self, statement: Any, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        names = list(compiled.positiontup or compiled.bind_names.values())
        for name in names:
            impl = compiled.binds[name].type.dialect_impl(dialect)
            # Float's processor only turns Decimals into floats; the store passes floats.
            if impl.bind_processor(dialect) not in (None, processors.to_float):
                raise TypeError(f"{name} needs SQLAlchemy's parameter processing")
        self.statement = statement
        self.sql = compiled.string
        self.names = names
        self.positional = compiled.positional

    def execute(self, connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Run it once per row (``rows`` map column names to values), in the connection's
        transaction."""
        names = self.names
        if self.positional:
            params: list[Any] = [tuple([row[n] for n in names]) for row in rows]
        else:
            params = [{n: row[n] for n in names} for row in rows]
        _driver_execute(connection, self.sql, params)


def _driver_execute(connection: Connection, sql: str, params: Sequence[Any] = ()) -> None:
    """Run ``sql`` on the driver's cursor (once, or once per item of ``params``); the driver's
    errors are turned into StoreErrors by :meth:`SqlStore._transaction`."""
    cursor = connection.connection.cursor()
    try:
        if len(params) == 1:
            cursor.execute(sql, params[0])
        elif params:
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql)
    finally:
        cursor.close()


def _upsert(insert: Callable[[Table], Any], table: Table, keep: Sequence[str] = ()) -> Any:
    """``INSERT ... ON CONFLICT (primary key) DO UPDATE SET`` every other column (those in
    ``keep`` only when the new value is not NULL)."""
    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=list(table.primary_key), set_=_excluded(statement, table, keep=keep)
    )


def _excluded(statement: Any, table: Table, keep: Sequence[str] = ()) -> dict[str, Any]:
    """``column = excluded.column`` for every column outside the primary key."""
    values: dict[str, Any] = {}
    for column in table.columns:
        if column.primary_key:
            continue
        new = statement.excluded[column.name]
        values[column.name] = func.coalesce(new, column) if column.name in keep else new
    return values


def _where(query: Select[Any], *conditions: Sequence[ColumnElement[bool]]) -> Select[Any]:
    every = [condition for group in conditions for condition in group]
    return query.where(*every) if every else query


def _equal(table: Table, **values: Any) -> list[ColumnElement[bool]]:
    """``column = value`` for each given (not None) value, by column name."""
    return [table.c[name] == value for name, value in values.items() if value is not None]


def _range(
    column: ColumnElement[Any], start: float | None, end: float | None
) -> list[ColumnElement[bool]]:
    conditions = []
    if start is not None:
        conditions.append(column >= start)
    if end is not None:
        conditions.append(column <= end)
    return conditions


# Record fields whose column has another name.
_RECORDING_COLUMNS = {"start": "start_time", "end": "end_time"}
_ALERT_COLUMNS = {"start": "start_time", "end": "end_time"}


def _row(record: Any, columns: dict[str, str]) -> dict[str, Any]:
    """A record's fields by column name."""
    return {columns.get(k, k): v for k, v in dataclasses.asdict(record).items()}


def _record(
    cls: type[R], columns: dict[str, str] | None = None, json_fields: Sequence[str] = ()
) -> Callable[[Any], R]:
    """Makes a ``cls`` from a row, each field from the column of its name (or
    ``columns[field]``), JSON columns decoded."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    sources = [(name, (columns or {}).get(name, name), name in json_fields) for name in names]

    def make(row: Any) -> R:
        mapping = row._mapping
        return cls(
            **{
                name: _loads(mapping[column]) if decode else mapping[column]
                for name, column, decode in sources
            }
        )

    return make


def _metric_row(sample: MetricSample, run_id: str | None) -> dict[str, Any]:
    if not sample.camera or not sample.zone:
        raise ValueError(f"metric sample needs a camera and a zone, got {sample!r}")
    if not math.isfinite(sample.time):
        raise ValueError(f"metric sample of {sample.target} has a non-finite time {sample.time}")
    values = sample.values
    row = {
        "camera": sample.camera,
        "zone": sample.zone,
        "kind": sample.kind,
        "time": float(sample.time),
        "frame_index": sample.frame_index,
        "level": sample.level,
        "extra": json.dumps(
            {k: _finite(v) for k, v in values.items() if k not in CORE_METRICS}, allow_nan=False
        ),
        "run_id": sample.run_id or run_id,
    }
    for name in CORE_METRICS:
        row[name] = _finite(values.get(name))
    return row


def _latest_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    newest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = (row["camera"], row["zone"], row["kind"])
        if key not in newest or row["time"] >= newest[key]["time"]:
            newest[key] = row
    return list(newest.values())


def _metric_sample(row: Any) -> MetricSample:
    mapping = row._mapping
    values: dict[str, float | None] = {name: mapping[name] for name in CORE_METRICS}
    values.update(_loads(mapping["extra"]) or {})
    return MetricSample(
        camera=mapping["camera"],
        zone=mapping["zone"],
        kind=mapping["kind"],
        time=mapping["time"],
        frame_index=mapping["frame_index"],
        level=mapping["level"],
        values=values,
        run_id=mapping["run_id"],
    )


_alert_record = _record(StoredAlert, _ALERT_COLUMNS, json_fields=["record"])


def _stored_alert(row: Any) -> StoredAlert:
    alert = _alert_record(row)
    return alert if alert.record is not None else dataclasses.replace(alert, record={})


_config_version = _record(ConfigVersion, json_fields=["config"])
_webhook = _record(WebhookDelivery)


def _audit_entry(row: Any) -> AuditEntry:
    mapping = row._mapping
    return AuditEntry(
        mapping["time"],
        mapping["actor"],
        mapping["action"],
        mapping["target"],
        _loads(mapping["detail"]) or {},
        mapping["id"],
    )


def _config_dict(config: Any) -> dict[str, Any]:
    if hasattr(config, "model_dump"):
        return json.loads(json.dumps(config.model_dump(mode="json")))
    if isinstance(config, dict):
        return json.loads(json.dumps(config))
    raise TypeError(f"save_config needs an EventConfig or a dict, got {type(config).__name__}")


def _bucketed(
    points: list[tuple[float, float | None]], bucket_s: float
) -> list[tuple[float, float | None]]:
    buckets: dict[float, list[float]] = {}
    for when, value in points:
        key = math.floor(when / bucket_s) * bucket_s
        bucket = buckets.setdefault(key, [])
        if value is not None:
            bucket.append(value)
    return [(key, sum(v) / len(v) if v else None) for key, v in sorted(buckets.items())]


def _require(data: dict[str, Any], keys: Sequence[str]) -> None:
    missing = [key for key in keys if data.get(key) is None]
    if missing:
        raise ValueError(f"alert record lacks {', '.join(missing)}: {data!r}")


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def _reason(error: DBAPIError) -> str:
    """The database's own message on one line, without SQLAlchemy's statement and links."""
    return " ".join(str(error.orig).split()) or type(error.orig).__name__
