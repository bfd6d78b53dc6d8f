"""Open a store from a URL or a path: SQLite (WAL, no set-up) or PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from crowdwatch.store.sql import POSTGRES, SQLITE, SqlStore, StoreError

# Where a crowdwatch run keeps its store when none is given.
DEFAULT_STORE_NAME = "crowdwatch.db"


def open_store(target: str | os.PathLike[str]) -> SqlStore:
    """Open (creating if needed) the store at ``target``.

    ``target`` is a file path or ``sqlite:///path.db`` for SQLite (``:memory:`` for a private
    in-memory store), or ``postgresql://user@host:port/dbname`` for PostgreSQL (needs the
    ``psycopg`` package).

    Raises:
        StoreError: the database cannot be opened, naming it and why.

    Example:
        >>> store = open_store(":memory:")
        >>> store.latest_config() is None
        True
        >>> store.close()
    """
    text = os.fspath(target)
    if text.startswith(("postgresql://", "postgres://")):
        return _open_postgres(text)
    if text.startswith("sqlite://"):
        # sqlite:///relative.db and sqlite:////absolute/path.db, as SQLAlchemy spells them.
        text = text.removeprefix("sqlite://").removeprefix("/") or ":memory:"
    if "://" in text:
        raise StoreError(f"unknown store URL {text!r}: use a path, sqlite:///path or postgresql://")
    return _open_sqlite(text)


def _open_sqlite(path: str) -> SqlStore:
    if path != ":memory:":
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
    try:
        connection = sqlite3.connect(
            path, timeout=30.0, check_same_thread=False, isolation_level="DEFERRED"
        )
        # WAL: the console reads while the engine writes. synchronous=NORMAL in WAL mode keeps
        # every committed transaction through a crash of the process (not of the machine).
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA busy_timeout=30000")
    except sqlite3.Error as error:
        raise StoreError(f"cannot open SQLite store {path}: {error}") from error
    absolute = path if path == ":memory:" else str(Path(path).expanduser().resolve())
    return SqlStore(connection, SQLITE, f"sqlite:///{path}", target=absolute)


def _open_postgres(url: str) -> SqlStore:
    try:
        import psycopg
    except ImportError as error:
        raise StoreError(
            "a PostgreSQL store needs the psycopg package: pip install 'psycopg[binary]'"
        ) from error
    try:
        connection = psycopg.connect(url, connect_timeout=10)
    except psycopg.Error as error:
        raise StoreError(f"cannot connect to PostgreSQL store {_redact(url)}: {error}") from error
    return SqlStore(connection, POSTGRES, _redact(url), target=url)


def _redact(url: str) -> str:
    """Hide a password in ``postgresql://user:pass@host`` so it never reaches logs."""
    head, at, tail = url.rpartition("@")
    if not at or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, credentials = head.partition("//")
    user = credentials.split(":", 1)[0]
    return f"{scheme}//{user}:***@{tail}"
