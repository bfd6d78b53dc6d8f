"""Schema 1: the store as crowdwatch wrote it before migrations (``meta.schema_version = 1``).

Kept as the exact SQL of that release, so that a store created now is the same as one created
then. A store from that release has no ``alembic_version`` table: the store stamps it with this
revision before upgrading it.

Revision ID: 0001
Revises:
Create Date: 2025-06-15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Serial keys and floats per database, as schema 1 spelled them.
_TYPES = {
    "sqlite": {"serial": "INTEGER PRIMARY KEY AUTOINCREMENT", "real": "REAL"},
    "postgresql": {"serial": "BIGSERIAL PRIMARY KEY", "real": "DOUBLE PRECISION"},
}

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

_DROP = (
    "users", "audit_log", "recordings", "config_changes", "config_versions", "camera_events",
    "camera_health", "alert_actions", "alerts", "latest_metrics", "metrics", "meta",
)  # fmt: skip


def upgrade() -> None:
    bind = op.get_bind()
    ddl = _TABLES.format(**_TYPES[bind.dialect.name])
    for statement in filter(str.strip, ddl.split(";")):
        op.execute(statement)
    found = bind.execute(sa.text("SELECT value FROM meta WHERE key = 'schema_version'")).first()
    if found is None:
        op.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '1')")


def downgrade() -> None:
    for table in _DROP:
        op.execute(f"DROP TABLE IF EXISTS {table}")
