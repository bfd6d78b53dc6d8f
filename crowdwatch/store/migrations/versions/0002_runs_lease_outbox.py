"""Schema 2: runs (a run id on metrics and alerts), the engine lease, the webhook outbox.

- ``run_id`` on ``metrics``, ``latest_metrics`` and ``alerts`` (NULL for rows written before),
  and a ``runs`` table: which analysis or engine run wrote them (issue #16).
- ``leases``: one engine per store; a second engine sees the holder (issue #12).
- ``webhook_outbox``: webhook deliveries that survive a restart (issue #12).

Revision ID: 0002
Revises: 0001
Create Date: 2025-06-16
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# As schema 1 spelled them: REAL on SQLite, DOUBLE PRECISION on PostgreSQL; serial keys.
_REAL = sa.REAL().with_variant(postgresql.DOUBLE_PRECISION(), "postgresql")
_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_RUN_TABLES = ("metrics", "latest_metrics", "alerts")


def upgrade() -> None:
    for table in _RUN_TABLES:
        op.add_column(table, sa.Column("run_id", sa.Text(), nullable=True))
    op.create_table(
        "runs",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("camera", sa.Text()),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("started", _REAL, nullable=False),
        sa.Column("ended", _REAL),
        sa.Column("source", sa.Text()),
        sa.Column("config_hash", sa.Text()),
        sa.Column("model", sa.Text()),
        sa.Column("detail", sa.Text(), nullable=False, server_default="{}"),
    )
    op.create_index("runs_camera", "runs", ["camera", "started"])
    op.create_table(
        "leases",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("since", _REAL, nullable=False),
        sa.Column("heartbeat", _REAL, nullable=False),
        sa.Column("ttl_s", _REAL, nullable=False),
    )
    op.create_table(
        "webhook_outbox",
        sa.Column("id", _SERIAL, primary_key=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created", _REAL, nullable=False),
        sa.Column("next_try", _REAL, nullable=False),
        sa.Column("attempts", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("state", sa.Text(), nullable=False, server_default="pending"),
        sa.Column("last_error", sa.Text()),
        sa.Column("done", _REAL),
        sa.UniqueConstraint("url", "event_id", name="webhook_outbox_event"),
        sqlite_autoincrement=True,
    )
    op.create_index("webhook_outbox_due", "webhook_outbox", ["state", "next_try"])
    op.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")


def downgrade() -> None:
    op.drop_table("webhook_outbox")
    op.drop_table("leases")
    op.drop_index("runs_camera", "runs")
    op.drop_table("runs")
    for table in _RUN_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("run_id")
    op.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
