"""The store on SQL: one implementation for SQLite (the default) and PostgreSQL.

Both speak the same SQL here (``ON CONFLICT`` upserts, ``RETURNING``); a small
:class:`Dialect` covers the differences (placeholders, column types). Every public method is one
transaction, guarded by a lock, so camera worker threads can share one store object.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crowdwatch.store.diff import diff
from crowdwatch.store.records import (
    CAMERA_STATES,
    ROLES,
    AlertAction,
    AuditEntry,
    CameraEvent,
    CameraHealth,
    ConfigChange,
    ConfigVersion,
    Gap,
    MetricSample,
    RecordingEntry,
    Retention,
    StoredAlert,
    User,
)

SCHEMA_VERSION = 1
# Metrics every zone has get their own columns (fast to query and aggregate); anything else a
# stage adds (line flow, pressure, ...) goes into the ``extra`` JSON column.
CORE_METRICS = ("count", "density", "occupancy", "area_m2")
DAY_S = 86400.0


@dataclass(frozen=True)
class Dialect:
    """What differs between the SQL databases the store runs on."""

    name: str
    placeholder: str
    serial: str
    real: str


SQLITE = Dialect("sqlite", "?", "INTEGER PRIMARY KEY AUTOINCREMENT", "REAL")
POSTGRES = Dialect("postgresql", "%s", "BIGSERIAL PRIMARY KEY", "DOUBLE PRECISION")

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS metrics (
    camera TEXT NOT NULL, zone TEXT NOT NULL, kind TEXT NOT NULL, time {real} NOT NULL,
    frame_index BIGINT, level TEXT NOT NULL, count {real}, density {real}, occupancy {real},
    area_m2 {real}, extra TEXT NOT NULL DEFAULT '{{}}',
    PRIMARY KEY (camera, zone, kind, time));
CREATE INDEX IF NOT EXISTS metrics_time ON metrics (time);
CREATE TABLE IF NOT EXISTS latest_metrics (
    camera TEXT NOT NULL, zone TEXT NOT NULL, kind TEXT NOT NULL, time {real} NOT NULL,
    frame_index BIGINT, level TEXT NOT NULL, count {real}, density {real}, occupancy {real},
    area_m2 {real}, extra TEXT NOT NULL DEFAULT '{{}}',
    PRIMARY KEY (camera, zone, kind));
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY, camera TEXT NOT NULL, zone TEXT NOT NULL, rule TEXT NOT NULL,
    metric TEXT NOT NULL, level TEXT NOT NULL, value {real}, peak {real},
    start_time {real} NOT NULL, opened {real} NOT NULL, end_time {real}, closed {real},
    acknowledged_by TEXT, acknowledged_at {real}, acknowledged_note TEXT, snapshot TEXT,
    updated {real} NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS alerts_opened ON alerts (opened);
CREATE INDEX IF NOT EXISTS alerts_closed ON alerts (closed);
CREATE TABLE IF NOT EXISTS alert_actions (
    id {serial}, alert_id TEXT NOT NULL, action TEXT NOT NULL, operator TEXT NOT NULL,
    note TEXT NOT NULL, time {real} NOT NULL);
CREATE INDEX IF NOT EXISTS alert_actions_alert ON alert_actions (alert_id);
CREATE TABLE IF NOT EXISTS camera_health (
    camera TEXT PRIMARY KEY, state TEXT NOT NULL, analysis_fps {real} NOT NULL,
    target_fps {real}, analysed_frames BIGINT NOT NULL, skipped_frames BIGINT NOT NULL,
    last_frame_time {real}, reconnects BIGINT NOT NULL, error TEXT, updated {real} NOT NULL);
CREATE TABLE IF NOT EXISTS camera_events (
    id {serial}, camera TEXT NOT NULL, time {real} NOT NULL, state TEXT NOT NULL,
    detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS camera_events_camera ON camera_events (camera, time);
CREATE TABLE IF NOT EXISTS config_versions (
    version {serial}, time {real} NOT NULL, author TEXT NOT NULL, note TEXT NOT NULL,
    config TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS config_changes (
    id {serial}, version BIGINT NOT NULL, time {real} NOT NULL, author TEXT NOT NULL,
    path TEXT NOT NULL, old TEXT, new TEXT);
CREATE TABLE IF NOT EXISTS recordings (
    path TEXT PRIMARY KEY, camera TEXT NOT NULL, kind TEXT NOT NULL, start_time {real} NOT NULL,
    end_time {real} NOT NULL, bytes BIGINT NOT NULL, status TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS recordings_camera ON recordings (camera, kind, start_time);
CREATE TABLE IF NOT EXISTS audit_log (
    id {serial}, time {real} NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    target TEXT NOT NULL, detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_log_time ON audit_log (time);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL,
    created {real} NOT NULL);
"""

_METRIC_COLUMNS = (
    "camera, zone, kind, time, frame_index, level, count, density, occupancy, area_m2, extra"
)
_ALERT_COLUMNS = (
    "id, camera, zone, rule, metric, level, value, peak, start_time, opened, end_time, closed, "
    "acknowledged_by, acknowledged_at, acknowledged_note, snapshot, updated, record"
)
_HEALTH_COLUMNS = (
    "camera, state, analysis_fps, target_fps, analysed_frames, skipped_frames, last_frame_time, "
    "reconnects, error, updated"
)


class StoreError(RuntimeError):
    """The store cannot do what was asked (bad input, a schema from a newer crowdwatch)."""


class SqlStore:
    """Metrics, alerts, camera health, config versions, recordings, audit log and users.

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

    def __init__(
        self, connection: Any, dialect: Dialect, url: str, target: str | None = None
    ) -> None:
        self._connection = connection
        self.dialect = dialect
        self.url = url
        self._target = target or url
        self._lock = threading.RLock()
        self._create_schema()

    # -- lifecycle -------------------------------------------------------------------------

    def url_for_workers(self) -> str:
        """What another process opens to reach this store (with credentials: never log it)."""
        return self._target

    @property
    def folder(self) -> Path | None:
        """The folder of a SQLite store's file (relative paths in the store start there);
        None for PostgreSQL and in-memory stores."""
        if self.dialect is not SQLITE or ":memory:" in self.url:
            return None
        return Path(self.url.removeprefix("sqlite:///")).resolve().parent

    def close(self) -> None:
        """Close the connection; safe to call twice."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- metrics ---------------------------------------------------------------------------

    def write_metrics(self, samples: Iterable[MetricSample]) -> int:
        """Write a batch of samples in one transaction; a sample at an existing
        (camera, zone, kind, time) replaces it. Returns how many were written."""
        rows = [_metric_row(sample) for sample in samples]
        if not rows:
            return 0
        marks = ", ".join("?" * 11)
        update = ", ".join(f"{c} = excluded.{c}" for c in _METRIC_COLUMNS.split(", ")[4:])
        with self._transaction() as cursor:
            self._executemany(
                cursor,
                f"INSERT INTO metrics ({_METRIC_COLUMNS}) VALUES ({marks}) "
                f"ON CONFLICT (camera, zone, kind, time) DO UPDATE SET {update}",
                rows,
            )
            latest = _latest_rows(rows)
            self._executemany(
                cursor,
                f"INSERT INTO latest_metrics ({_METRIC_COLUMNS}) VALUES ({marks}) "
                f"ON CONFLICT (camera, zone, kind) DO UPDATE SET time = excluded.time, {update} "
                "WHERE excluded.time >= latest_metrics.time",
                latest,
            )
        return len(rows)

    def metrics(
        self,
        camera: str | None = None,
        zone: str | None = None,
        start: float | None = None,
        end: float | None = None,
        kind: str | None = None,
        limit: int | None = None,
    ) -> list[MetricSample]:
        """Samples in time order, filtered by camera, zone, kind and ``start <= time <= end``."""
        where, params = _filters(
            [("camera = ?", camera), ("zone = ?", zone), ("kind = ?", kind)],
            [("time >= ?", start), ("time <= ?", end)],
        )
        sql = f"SELECT {_METRIC_COLUMNS} FROM metrics{where} ORDER BY time, camera, zone"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_metric_sample(row) for row in self._query(sql, params)]

    def latest_metrics(self, camera: str | None = None) -> list[MetricSample]:
        """The newest sample of every target (of one camera, or of all)."""
        where, params = _filters([("camera = ?", camera)], [])
        sql = f"SELECT {_METRIC_COLUMNS} FROM latest_metrics{where} ORDER BY camera, kind, zone"
        return [_metric_sample(row) for row in self._query(sql, params)]

    def metric_series(
        self,
        camera: str,
        zone: str,
        metric: str,
        start: float | None = None,
        end: float | None = None,
        bucket_s: float | None = None,
    ) -> list[tuple[float, float | None]]:
        """``(time, value)`` of one metric of one target; with ``bucket_s``, the mean of
        each bucket (at the bucket's start), for charts of long time ranges."""
        samples = self.metrics(camera, zone, start, end)
        points = [(s.time, s.value(metric)) for s in samples]
        if not bucket_s:
            return points
        return _bucketed(points, bucket_s)

    # -- alerts ----------------------------------------------------------------------------

    def upsert_alert(self, record: Any, now: float | None = None) -> None:
        """Insert or update an alert from an :class:`~crowdwatch.alerts.AlertRecord` (or its
        ``to_dict()``) whose times are epoch seconds.

        An acknowledgement already in the store is kept when the record has none (the
        analysis engine does not know about acknowledgements made in the console).
        """
        data = record.to_dict() if hasattr(record, "to_dict") else dict(record)
        _require(data, ("id", "camera", "zone", "rule", "metric", "level", "start_s", "opened_s"))
        row = (
            data["id"],
            data["camera"],
            data["zone"],
            data["rule"],
            data["metric"],
            data["level"],
            _finite(data.get("value")),
            _finite(data.get("peak")),
            data["start_s"],
            data["opened_s"],
            data.get("end_s"),
            data.get("closed_s"),
            data.get("acknowledged_by"),
            data.get("acknowledged_s"),
            data.get("acknowledged_note"),
            data.get("snapshot"),
            time.time() if now is None else now,
            json.dumps(data, allow_nan=False, default=_json_default),
        )
        keep = ("acknowledged_by", "acknowledged_at", "acknowledged_note", "snapshot")
        columns = _ALERT_COLUMNS.split(", ")
        update = ", ".join(
            f"{c} = COALESCE(excluded.{c}, alerts.{c})" if c in keep else f"{c} = excluded.{c}"
            for c in columns[1:]
        )
        with self._transaction() as cursor:
            self._execute(
                cursor,
                f"INSERT INTO alerts ({_ALERT_COLUMNS}) VALUES ({', '.join('?' * len(row))}) "
                f"ON CONFLICT (id) DO UPDATE SET {update}",
                row,
            )

    def alert(self, alert_id: str) -> StoredAlert | None:
        """One alert by id, or None."""
        rows = self._query(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE id = ?", (alert_id,))
        return _stored_alert(rows[0]) if rows else None

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
    ) -> list[StoredAlert]:
        """Alerts newest first. ``active``: only open (True) or closed (False) ones;
        ``start``/``end``: alerts that overlap that time range."""
        flags = []
        if active is not None:
            flags.append("closed IS NULL" if active else "closed IS NOT NULL")
        if acknowledged is not None:
            flags.append(
                "acknowledged_by IS NOT NULL" if acknowledged else "acknowledged_by IS NULL"
            )
        where, params = _filters(
            [("camera = ?", camera), ("zone = ?", zone), ("level = ?", level)],
            [("(closed IS NULL OR closed >= ?)", start), ("opened <= ?", end)],
            flags,
        )
        sql = f"SELECT {_ALERT_COLUMNS} FROM alerts{where} ORDER BY opened DESC, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_stored_alert(row) for row in self._query(sql, params)]

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
        with self._transaction() as cursor:
            self._execute(cursor, "SELECT acknowledged_by FROM alerts WHERE id = ?", (alert_id,))
            row = cursor.fetchone()
            if row is None:
                raise KeyError(f"no alert with id {alert_id!r}")
            if row[0] is not None:
                raise ValueError(f"alert {alert_id!r} was already acknowledged by {row[0]!r}")
            self._execute(
                cursor,
                "UPDATE alerts SET acknowledged_by = ?, acknowledged_at = ?, "
                "acknowledged_note = ?, updated = ? WHERE id = ?",
                (operator, when, note, when, alert_id),
            )
            self._execute(
                cursor,
                "INSERT INTO alert_actions (alert_id, action, operator, note, time) "
                "VALUES (?, ?, ?, ?, ?)",
                (alert_id, "acknowledged", operator, note, when),
            )
            self._insert_audit(
                cursor,
                AuditEntry(when, operator, "acknowledge", f"alert:{alert_id}", {"note": note}),
            )
        return AlertAction(alert_id, "acknowledged", operator, note, when)

    def close_orphaned_alerts(self, camera: str, time_s: float, reason: str) -> int:
        """Close the camera's alerts left open by an engine that stopped without closing them
        (a crash, a kill); ``end_reason`` says why. Returns how many were closed."""
        with self._transaction() as cursor:
            self._execute(
                cursor,
                "SELECT id, record FROM alerts WHERE camera = ? AND closed IS NULL",
                (camera,),
            )
            rows = cursor.fetchall()
            for alert_id, record in rows:
                data = {**(_loads(record) or {}), "closed_s": time_s, "end_reason": reason}
                data["end_s"] = data.get("end_s") or time_s
                self._execute(
                    cursor,
                    "UPDATE alerts SET closed = ?, end_time = COALESCE(end_time, ?), "
                    "updated = ?, record = ? WHERE id = ?",
                    (time_s, time_s, time_s, json.dumps(data), alert_id),
                )
        return len(rows)

    def alert_actions(self, alert_id: str | None = None) -> list[AlertAction]:
        """Operator actions on alerts (of one alert, or all), oldest first."""
        where, params = _filters([("alert_id = ?", alert_id)], [])
        rows = self._query(
            f"SELECT alert_id, action, operator, note, time FROM alert_actions{where} "
            "ORDER BY time, id",
            params,
        )
        return [AlertAction(*row) for row in rows]

    # -- camera health ---------------------------------------------------------------------

    def set_health(self, health: CameraHealth) -> None:
        """Write a camera's current health; a change of state is also kept as a
        :class:`CameraEvent` (with ``health.error`` as its detail)."""
        if health.state not in CAMERA_STATES:
            raise ValueError(f"unknown camera state {health.state!r}; one of {CAMERA_STATES}")
        updated = health.updated or time.time()
        row = (
            health.camera,
            health.state,
            float(health.analysis_fps),
            health.target_fps,
            int(health.analysed_frames),
            int(health.skipped_frames),
            health.last_frame_time,
            int(health.reconnects),
            health.error,
            updated,
        )
        update = ", ".join(f"{c} = excluded.{c}" for c in _HEALTH_COLUMNS.split(", ")[1:])
        with self._transaction() as cursor:
            self._execute(cursor, "SELECT state FROM camera_health WHERE camera = ?", (row[0],))
            previous = cursor.fetchone()
            self._execute(
                cursor,
                f"INSERT INTO camera_health ({_HEALTH_COLUMNS}) VALUES ({', '.join('?' * 10)}) "
                f"ON CONFLICT (camera) DO UPDATE SET {update}",
                row,
            )
            if previous is None or previous[0] != health.state:
                self._execute(
                    cursor,
                    "INSERT INTO camera_events (camera, time, state, detail) VALUES (?, ?, ?, ?)",
                    (health.camera, updated, health.state, health.error or ""),
                )

    def health(self, camera: str | None = None) -> list[CameraHealth]:
        """Every camera's (or one camera's) last reported health, by name."""
        where, params = _filters([("camera = ?", camera)], [])
        rows = self._query(
            f"SELECT {_HEALTH_COLUMNS} FROM camera_health{where} ORDER BY camera", params
        )
        return [CameraHealth(*row) for row in rows]

    def camera_events(
        self, camera: str | None = None, start: float | None = None, end: float | None = None
    ) -> list[CameraEvent]:
        """State changes of cameras in time order."""
        where, params = _filters(
            [("camera = ?", camera)], [("time >= ?", start), ("time <= ?", end)]
        )
        rows = self._query(
            f"SELECT camera, time, state, detail FROM camera_events{where} ORDER BY time, id",
            params,
        )
        return [CameraEvent(*row) for row in rows]

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
        with self._transaction() as cursor:
            latest = self._latest_config(cursor)
            if latest is not None and latest.config == data:
                return latest
            changes = diff(latest.config if latest else None, data)
            self._execute(
                cursor,
                "INSERT INTO config_versions (time, author, note, config) VALUES (?, ?, ?, ?) "
                "RETURNING version",
                (when, author, note, json.dumps(data)),
            )
            version = int(cursor.fetchone()[0])
            self._executemany(
                cursor,
                "INSERT INTO config_changes (version, time, author, path, old, new) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (version, when, author, path, json.dumps(old), json.dumps(new))
                    for path, old, new in changes
                ],
            )
            self._insert_audit(
                cursor,
                AuditEntry(
                    when,
                    author,
                    "config",
                    f"config:{version}",
                    {"note": note, "changes": len(changes)},
                ),
            )
        return ConfigVersion(version, when, author, note, data)

    def latest_config(self) -> ConfigVersion | None:
        """The newest configuration version, or None when none was saved."""
        with self._transaction() as cursor:
            return self._latest_config(cursor)

    def config_version(self, version: int) -> ConfigVersion:
        """One configuration version by number (KeyError if there is none)."""
        rows = self._query(
            "SELECT version, time, author, note, config FROM config_versions WHERE version = ?",
            (version,),
        )
        if not rows:
            raise KeyError(f"no configuration version {version}")
        return _config_version(rows[0])

    def config_versions(self) -> list[ConfigVersion]:
        """Every configuration version, oldest first."""
        rows = self._query(
            "SELECT version, time, author, note, config FROM config_versions ORDER BY version"
        )
        return [_config_version(row) for row in rows]

    def config_changes(
        self, since_version: int | None = None, path_prefix: str | None = None
    ) -> list[ConfigChange]:
        """Changed values, oldest first: who changed which path from what to what, and when.

        ``since_version``: only versions after that one.
        """
        where, params = _filters(
            [], [("version > ?", since_version)], [], [("path LIKE ?", path_prefix)]
        )
        rows = self._query(
            f"SELECT version, time, author, path, old, new FROM config_changes{where} "
            "ORDER BY version, id",
            params,
        )
        return [
            ConfigChange(row[0], row[1], row[2], row[3], _loads(row[4]), _loads(row[5]))
            for row in rows
        ]

    # -- recordings ------------------------------------------------------------------------

    def add_recording(self, entry: RecordingEntry) -> None:
        """Index a recorded segment or snapshot (replacing an entry with the same path)."""
        if entry.kind not in ("segment", "snapshot"):
            raise ValueError(f"recording kind must be segment or snapshot, not {entry.kind!r}")
        columns = "path, camera, kind, start_time, end_time, bytes, status"
        update = ", ".join(f"{c} = excluded.{c}" for c in columns.split(", ")[1:])
        with self._transaction() as cursor:
            self._execute(
                cursor,
                f"INSERT INTO recordings ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?) "
                f"ON CONFLICT (path) DO UPDATE SET {update}",
                (
                    entry.path,
                    entry.camera,
                    entry.kind,
                    entry.start,
                    entry.end,
                    int(entry.bytes),
                    entry.status,
                ),
            )

    def recordings(
        self,
        camera: str | None = None,
        start: float | None = None,
        end: float | None = None,
        kind: str | None = None,
    ) -> list[RecordingEntry]:
        """Recorded files that overlap ``[start, end]``, in time order."""
        where, params = _filters(
            [("camera = ?", camera), ("kind = ?", kind)],
            [("end_time >= ?", start), ("start_time <= ?", end)],
        )
        rows = self._query(
            "SELECT camera, kind, start_time, end_time, path, bytes, status FROM recordings"
            f"{where} ORDER BY start_time, path",
            params,
        )
        return [RecordingEntry(*row) for row in rows]

    def recorded_bytes(self, camera: str | None = None) -> int:
        """Total size of the indexed recordings."""
        where, params = _filters([("camera = ?", camera)], [])
        rows = self._query(f"SELECT COALESCE(SUM(bytes), 0) FROM recordings{where}", params)
        return int(rows[0][0])

    def set_recording_status(self, path: str, status: str) -> None:
        """Mark an indexed file, e.g. ``corrupt`` when it cannot be decoded."""
        with self._transaction() as cursor:
            self._execute(cursor, "UPDATE recordings SET status = ? WHERE path = ?", (status, path))

    def remove_recording(self, path: str) -> None:
        """Drop a file from the index (the caller deletes the file)."""
        with self._transaction() as cursor:
            self._execute(cursor, "DELETE FROM recordings WHERE path = ?", (path,))

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
        with self._transaction() as cursor:
            return self._insert_audit(cursor, entry)

    def audit_log(
        self,
        start: float | None = None,
        end: float | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int | None = None,
    ) -> list[AuditEntry]:
        """Audit entries, newest first."""
        where, params = _filters(
            [("actor = ?", actor), ("action = ?", action)],
            [("time >= ?", start), ("time <= ?", end)],
        )
        sql = (
            f"SELECT time, actor, action, target, detail, id FROM audit_log{where} "
            "ORDER BY time DESC, id DESC"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [
            AuditEntry(row[0], row[1], row[2], row[3], _loads(row[4]) or {}, row[5])
            for row in self._query(sql, params)
        ]

    def set_user(self, name: str, role: str, password_hash: str) -> User:
        """Create a user or change one's role and password hash (never a plain password)."""
        if not name.strip():
            raise ValueError("a user needs a name")
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; one of {ROLES}")
        if not password_hash:
            raise ValueError(f"user {name!r}: empty password hash")
        created = time.time()
        with self._transaction() as cursor:
            self._execute(
                cursor,
                "INSERT INTO users (name, role, password_hash, created) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET role = excluded.role, "
                "password_hash = excluded.password_hash",
                (name, role, password_hash, created),
            )
        user = self.user(name)
        assert user is not None
        return user

    def user(self, name: str) -> User | None:
        """One user by name, or None."""
        rows = self._query(
            "SELECT name, role, password_hash, created FROM users WHERE name = ?", (name,)
        )
        return User(*rows[0]) if rows else None

    def users(self) -> list[User]:
        """Every user, by name."""
        rows = self._query("SELECT name, role, password_hash, created FROM users ORDER BY name")
        return [User(*row) for row in rows]

    def remove_user(self, name: str) -> None:
        """Delete a user (no error if there is none)."""
        with self._transaction() as cursor:
            self._execute(cursor, "DELETE FROM users WHERE name = ?", (name,))

    # -- retention -------------------------------------------------------------------------

    def prune(self, retention: Retention, now: float | None = None) -> dict[str, int]:
        """Delete what is older than the retention periods; returns rows deleted per table.

        Open alerts are kept however old.
        """
        now = time.time() if now is None else now
        plan = [
            ("metrics", "time", retention.metrics_days, ""),
            ("alerts", "closed", retention.alerts_days, " AND closed IS NOT NULL"),
            ("alert_actions", "time", retention.alerts_days, ""),
            ("camera_events", "time", retention.health_days, ""),
            ("audit_log", "time", retention.audit_days, ""),
        ]
        deleted: dict[str, int] = {}
        with self._transaction() as cursor:
            for table, column, days, extra in plan:
                if days is None:
                    continue
                self._execute(
                    cursor,
                    f"DELETE FROM {table} WHERE {column} < ?{extra}",
                    (now - days * DAY_S,),
                )
                deleted[table] = max(cursor.rowcount, 0)
        return deleted

    # -- plumbing --------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._lock:
            if self._connection is None:
                raise StoreError(f"store {self.url} is closed")
            cursor = self._connection.cursor()
            try:
                yield cursor
                self._connection.commit()
            except BaseException:
                self._connection.rollback()
                raise
            finally:
                cursor.close()

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._transaction() as cursor:
            self._execute(cursor, sql, params)
            return [tuple(row) for row in cursor.fetchall()]

    def _execute(self, cursor: Any, sql: str, params: Sequence[Any] = ()) -> None:
        cursor.execute(self._sql(sql), tuple(params))

    def _executemany(self, cursor: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            cursor.executemany(self._sql(sql), [tuple(row) for row in rows])

    def _sql(self, sql: str) -> str:
        return (
            sql if self.dialect.placeholder == "?" else sql.replace("?", self.dialect.placeholder)
        )

    def _create_schema(self) -> None:
        ddl = _TABLES.format(serial=self.dialect.serial, real=self.dialect.real)
        with self._transaction() as cursor:
            for statement in filter(str.strip, ddl.split(";")):
                cursor.execute(statement)
            self._execute(cursor, "SELECT value FROM meta WHERE key = 'schema_version'")
            row = cursor.fetchone()
            if row is None:
                self._execute(
                    cursor,
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            elif int(row[0]) > SCHEMA_VERSION:
                raise StoreError(
                    f"store {self.url} has schema version {row[0]}, newer than this crowdwatch "
                    f"understands ({SCHEMA_VERSION}); upgrade crowdwatch"
                )

    def _latest_config(self, cursor: Any) -> ConfigVersion | None:
        self._execute(
            cursor,
            "SELECT version, time, author, note, config FROM config_versions "
            "ORDER BY version DESC LIMIT 1",
        )
        row = cursor.fetchone()
        return _config_version(row) if row else None

    def _insert_audit(self, cursor: Any, entry: AuditEntry) -> AuditEntry:
        self._execute(
            cursor,
            "INSERT INTO audit_log (time, actor, action, target, detail) VALUES (?, ?, ?, ?, ?) "
            "RETURNING id",
            (
                entry.time,
                entry.actor,
                entry.action,
                entry.target,
                json.dumps(entry.detail, default=_json_default),
            ),
        )
        return AuditEntry(
            entry.time,
            entry.actor,
            entry.action,
            entry.target,
            entry.detail,
            int(cursor.fetchone()[0]),
        )


def _filters(
    equal: Sequence[tuple[str, Any]],
    ranges: Sequence[tuple[str, Any]],
    flags: Sequence[str] = (),
    prefixes: Sequence[tuple[str, Any]] = (),
) -> tuple[str, list[Any]]:
    """A WHERE clause from the conditions whose value is given, and its parameters."""
    clauses, params = list(flags), []
    for clause, value in [*equal, *ranges]:
        if value is not None:
            clauses.append(clause)
            params.append(value)
    for clause, value in prefixes:
        if value is not None:
            clauses.append(clause)
            params.append(f"{value}%")
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _metric_row(sample: MetricSample) -> tuple[Any, ...]:
    if not sample.camera or not sample.zone:
        raise ValueError(f"metric sample needs a camera and a zone, got {sample!r}")
    if not math.isfinite(sample.time):
        raise ValueError(f"metric sample of {sample.target} has a non-finite time {sample.time}")
    core = [_finite(sample.values.get(name)) for name in CORE_METRICS]
    extra = {k: _finite(v) for k, v in sample.values.items() if k not in CORE_METRICS}
    return (
        sample.camera,
        sample.zone,
        sample.kind,
        float(sample.time),
        sample.frame_index,
        sample.level,
        *core,
        json.dumps(extra, allow_nan=False),
    )


def _latest_rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    newest: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for row in rows:
        key = row[:3]
        if key not in newest or row[3] >= newest[key][3]:
            newest[key] = row
    return list(newest.values())


def _metric_sample(row: Sequence[Any]) -> MetricSample:
    values: dict[str, float | None] = dict(zip(CORE_METRICS, row[6:10], strict=True))
    values.update(_loads(row[10]) or {})
    return MetricSample(
        camera=row[0],
        zone=row[1],
        kind=row[2],
        time=row[3],
        frame_index=row[4],
        level=row[5],
        values=values,
    )


def _stored_alert(row: Sequence[Any]) -> StoredAlert:
    return StoredAlert(*row[:17], record=_loads(row[17]) or {})


def _config_version(row: Sequence[Any]) -> ConfigVersion:
    return ConfigVersion(int(row[0]), row[1], row[2], row[3], _loads(row[4]))


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
