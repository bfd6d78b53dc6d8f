"""The store's tables, defined once (SQLAlchemy Core), at the newest schema revision.

Every statement of :mod:`crowdwatch.store.sql` is built from these tables, and rows are read by
column name. The tables are created and changed only by the Alembic migrations in
:mod:`crowdwatch.store.migrations` (one revision per schema version); a test checks that the
migrated database and these definitions agree.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    types,
)
from sqlalchemy.dialects import postgresql

# The newest schema revision (an Alembic revision id), and every revision this code knows, oldest
# first. ``meta.schema_version`` holds the revision's number too, so that crowdwatch releases from
# before the migrations refuse a newer store.
REVISIONS: tuple[str, ...] = ("0001", "0002")
HEAD = REVISIONS[-1]

# REAL on SQLite (as schema 1 wrote it), DOUBLE PRECISION on PostgreSQL.
Real = types.REAL().with_variant(postgresql.DOUBLE_PRECISION(), "postgresql")
# INTEGER PRIMARY KEY AUTOINCREMENT on SQLite (with ``sqlite_autoincrement``), BIGSERIAL on
# PostgreSQL.
Serial = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()


def _metric_columns() -> list[Column]:
    return [
        Column("camera", Text, nullable=False),
        Column("zone", Text, nullable=False),
        Column("kind", Text, nullable=False),
        Column("time", Real, nullable=False),
        Column("frame_index", BigInteger),
        Column("level", Text, nullable=False),
        Column("count", Real),
        Column("density", Real),
        Column("occupancy", Real),
        Column("area_m2", Real),
        Column("extra", Text, nullable=False, server_default="{}"),
        Column("run_id", Text),
    ]


meta = Table(
    "meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

metrics = Table(
    "metrics",
    metadata,
    *_metric_columns(),
    PrimaryKeyConstraint("camera", "zone", "kind", "time"),
    Index("metrics_time", "time"),
)

latest_metrics = Table(
    "latest_metrics",
    metadata,
    *_metric_columns(),
    PrimaryKeyConstraint("camera", "zone", "kind"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Text, primary_key=True),
    Column("camera", Text, nullable=False),
    Column("zone", Text, nullable=False),
    Column("rule", Text, nullable=False),
    Column("metric", Text, nullable=False),
    Column("level", Text, nullable=False),
    Column("value", Real),
    Column("peak", Real),
    Column("start_time", Real, nullable=False),
    Column("opened", Real, nullable=False),
    Column("end_time", Real),
    Column("closed", Real),
    Column("acknowledged_by", Text),
    Column("acknowledged_at", Real),
    Column("acknowledged_note", Text),
    Column("snapshot", Text),
    Column("updated", Real, nullable=False),
    Column("record", Text, nullable=False),
    Column("run_id", Text),
    Index("alerts_opened", "opened"),
    Index("alerts_closed", "closed"),
)

alert_actions = Table(
    "alert_actions",
    metadata,
    Column("id", Serial, primary_key=True),
    Column("alert_id", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("operator", Text, nullable=False),
    Column("note", Text, nullable=False),
    Column("time", Real, nullable=False),
    Index("alert_actions_alert", "alert_id"),
    sqlite_autoincrement=True,
)

camera_health = Table(
    "camera_health",
    metadata,
    Column("camera", Text, primary_key=True),
    Column("state", Text, nullable=False),
    Column("analysis_fps", Real, nullable=False),
    Column("target_fps", Real),
    Column("analysed_frames", BigInteger, nullable=False),
    Column("skipped_frames", BigInteger, nullable=False),
    Column("last_frame_time", Real),
    Column("reconnects", BigInteger, nullable=False),
    Column("error", Text),
    Column("updated", Real, nullable=False),
)

camera_events = Table(
    "camera_events",
    metadata,
    Column("id", Serial, primary_key=True),
    Column("camera", Text, nullable=False),
    Column("time", Real, nullable=False),
    Column("state", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Index("camera_events_camera", "camera", "time"),
    sqlite_autoincrement=True,
)

config_versions = Table(
    "config_versions",
    metadata,
    Column("version", Serial, primary_key=True),
    Column("time", Real, nullable=False),
    Column("author", Text, nullable=False),
    Column("note", Text, nullable=False),
    Column("config", Text, nullable=False),
    sqlite_autoincrement=True,
)

config_changes = Table(
    "config_changes",
    metadata,
    Column("id", Serial, primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("time", Real, nullable=False),
    Column("author", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("old", Text),
    Column("new", Text),
    sqlite_autoincrement=True,
)

recordings = Table(
    "recordings",
    metadata,
    Column("path", Text, primary_key=True),
    Column("camera", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("start_time", Real, nullable=False),
    Column("end_time", Real, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("status", Text, nullable=False),
    Index("recordings_camera", "camera", "kind", "start_time"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Serial, primary_key=True),
    Column("time", Real, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Index("audit_log_time", "time"),
    sqlite_autoincrement=True,
)

users = Table(
    "users",
    metadata,
    Column("name", Text, primary_key=True),
    Column("role", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("created", Real, nullable=False),
)

# -- revision 0002 ---------------------------------------------------------------------------

runs = Table(
    "runs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("camera", Text),
    Column("kind", Text, nullable=False),
    Column("started", Real, nullable=False),
    Column("ended", Real),
    Column("source", Text),
    Column("config_hash", Text),
    Column("model", Text),
    Column("detail", Text, nullable=False, server_default="{}"),
    Index("runs_camera", "camera", "started"),
)

leases = Table(
    "leases",
    metadata,
    Column("name", Text, primary_key=True),
    Column("owner", Text, nullable=False),
    Column("since", Real, nullable=False),
    Column("heartbeat", Real, nullable=False),
    Column("ttl_s", Real, nullable=False),
)

webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    Column("id", Serial, primary_key=True),
    Column("url", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("created", Real, nullable=False),
    Column("next_try", Real, nullable=False),
    Column("attempts", BigInteger, nullable=False, server_default="0"),
    Column("state", Text, nullable=False, server_default="pending"),
    Column("last_error", Text),
    Column("done", Real),
    UniqueConstraint("url", "event_id", name="webhook_outbox_event"),
    Index("webhook_outbox_due", "state", "next_try"),
    sqlite_autoincrement=True,
)
