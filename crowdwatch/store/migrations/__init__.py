"""Schema revisions of the store (Alembic), run by the store itself when it opens.

A store is at one revision of :data:`crowdwatch.store.schema.REVISIONS`, kept in Alembic's
``alembic_version`` table. A store written before the migrations existed (schema 1) has only
``meta.schema_version = 1``: it is stamped as revision ``0001`` and then upgraded like any other.
A store at a revision this code does not know was written by a newer crowdwatch and is refused.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, inspect, text

from crowdwatch.store.schema import HEAD, REVISIONS

FOLDER = Path(__file__).resolve().parent
# Serialises migrations of one PostgreSQL database (pg_advisory_xact_lock key; "crowdwatch").
_PG_LOCK = 0x63726F7764


class NewerStoreError(Exception):
    """The store was written by a newer crowdwatch (the message says which revision)."""


def revision(connection: Connection) -> str | None:
    """The store's schema revision, None for an empty database.

    Raises:
        NewerStoreError: the revision is newer than this code knows.
    """
    tables = set(inspect(connection).get_table_names())
    found: str | None = None
    if "alembic_version" in tables:
        found = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    if found is None and "meta" in tables:
        number = connection.execute(
            text("SELECT value FROM meta WHERE key = 'schema_version'")
        ).scalar()
        if number is not None:
            if not str(number).isdigit() or int(number) > len(REVISIONS):
                raise NewerStoreError(f"schema version {number}")
            found = REVISIONS[int(number) - 1]
            if "alembic_version" not in tables:
                found = f"unstamped:{found}"
    if found is not None and found.removeprefix("unstamped:") not in REVISIONS:
        raise NewerStoreError(f"schema revision {found}")
    return found


def is_current(connection: Connection) -> bool:
    """True when the store is at the newest revision (nothing to do)."""
    return revision(connection) == HEAD


def upgrade(connection: Connection) -> str | None:
    """Bring the store to the newest revision, inside the connection's transaction (which the
    caller holds with the database's write lock on SQLite). Returns the revision it was at.

    Raises:
        NewerStoreError: the store is newer than this code.
    """
    from alembic import command
    from alembic.config import Config

    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
    before = revision(connection)
    if before == HEAD:
        return before
    config = Config()
    config.set_main_option("script_location", str(FOLDER).replace("%", "%%"))
    config.attributes["connection"] = connection
    if before is not None and before.startswith("unstamped:"):
        command.stamp(config, before.removeprefix("unstamped:"))
    command.upgrade(config, HEAD)
    return before
