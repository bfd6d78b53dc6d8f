"""Open a store from a URL or a path: SQLite (WAL, no set-up) or PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import StaticPool

from crowdwatch.store.sql import SqlStore, StoreError, _reason

# Where a crowdwatch run keeps its store when none is given.
DEFAULT_STORE_NAME = "crowdwatch.db"
# Store files hold password hashes and the audit log: only their owner may read them.
FILE_MODE = 0o600
# How long an SQLite connection waits for another's lock before it reports the store busy.
SQLITE_BUSY_TIMEOUT_S = 30.0
_POSTGRES_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")


def open_store(target: str | os.PathLike[str]) -> SqlStore:
    """Open (creating if needed) the store at ``target``, upgrading its schema if it was
    written by an older crowdwatch.

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
    if text.startswith(_POSTGRES_SCHEMES):
        return _open_postgres(text)
    if text.startswith("sqlite://"):
        # sqlite:///relative.db and sqlite:////absolute/path.db, as SQLAlchemy spells them.
        text = text.removeprefix("sqlite://").removeprefix("/") or ":memory:"
    if "://" in text:
        raise StoreError(f"unknown store URL {text!r}: use a path, sqlite:///path or postgresql://")
    if not text.strip():
        raise StoreError("no store given: use a path, sqlite:///path or postgresql://")
    return _open_sqlite(text)


def _open_sqlite(path: str) -> SqlStore:
    if path == ":memory:":
        # One connection that every thread shares (the store serialises them).
        engine = create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
        absolute = path
    else:
        file = Path(path).expanduser()
        if file.is_dir():
            raise StoreError(
                f"store {path} is a folder, not a database file; "
                f"give a file such as {file / DEFAULT_STORE_NAME}"
            )
        blocking = next((p for p in file.parents if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            raise StoreError(
                f"cannot create SQLite store {path}: {blocking} is a file, not a folder"
            )
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            _create_private(file)
        except OSError as error:
            raise StoreError(f"cannot create SQLite store {path}: {error}") from error
        absolute = str(file.resolve())
        engine = create_engine(
            URL.create("sqlite", database=absolute),
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
            pool_size=1,
            max_overflow=4,
        )
    event.listen(engine, "connect", _sqlite_connected)
    return _store(engine, f"sqlite:///{path}", absolute, f"cannot open SQLite store {path}")


def _create_private(file: Path) -> None:
    """Create an empty store file readable by its owner only; SQLite gives its ``-wal`` and
    ``-shm`` files the same mode. An existing file is left as it is."""
    try:
        descriptor = os.open(file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
    except FileExistsError:
        return
    os.close(descriptor)


def _sqlite_connected(connection: Any, _record: Any) -> None:
    # The store begins its own transactions (BEGIN IMMEDIATE for writes, see
    # SqlStore._transaction): the driver must not begin them behind its back.
    connection.isolation_level = None
    cursor = connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        # WAL: the console reads while the engine writes. synchronous=NORMAL in WAL mode keeps
        # every committed transaction through a crash of the process (not of the machine).
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode=WAL``, retried while the file is locked: the switch takes an
    exclusive lock without SQLite's busy handler, so connections opening a new store at once
    (the engine's cameras, the console) get "database is locked" at once, whatever the timeout.
    Waits 5 ms, doubling to 200 ms, for at most :data:`SQLITE_BUSY_TIMEOUT_S` in all."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    pause = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(2 * pause, 0.2)


def _open_postgres(url: str) -> SqlStore:
    try:
        import psycopg  # noqa: F401
    except ImportError as error:
        raise StoreError(
            "a PostgreSQL store needs the psycopg package: pip install 'psycopg[binary]'"
        ) from error
    shown = _redact(url)
    try:
        parsed = make_url(url).set(drivername="postgresql+psycopg")
    except (ArgumentError, ValueError) as error:
        raise StoreError(f"bad PostgreSQL store URL {shown}: {error}") from error
    engine = create_engine(parsed, connect_args={"connect_timeout": 10}, pool_size=1)
    try:
        with engine.connect():
            pass
    except DBAPIError as error:
        engine.dispose()
        raise StoreError(f"cannot connect to PostgreSQL store {shown}: {_reason(error)}") from error
    return _store(engine, shown, url, f"cannot open PostgreSQL store {shown}")


def _store(engine: Engine, url: str, target: str, failure: str) -> SqlStore:
    try:
        return SqlStore(engine, url, target=target)
    except StoreError:
        engine.dispose()
        raise
    except DBAPIError as error:
        engine.dispose()
        raise StoreError(f"{failure}: {_reason(error)}") from error


def _redact(url: str) -> str:
    """Hide a password in ``postgresql://user:pass@host`` so it never reaches logs."""
    head, at, tail = url.rpartition("@")
    if not at or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, credentials = head.partition("//")
    user = credentials.split(":", 1)[0]
    return f"{scheme}//{user}:***@{tail}"
