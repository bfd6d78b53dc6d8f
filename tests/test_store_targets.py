"""What a store is opened on: bad targets end in a StoreError naming them, store files are
private (0600), camera threads share one store object, a dropped PostgreSQL connection is
replaced."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import psycopg
import pytest
from pgserver import fresh_database_url

from crowdwatch.errors import CrowdwatchError
from crowdwatch.store import MetricSample, StoreError, open_store

T0 = 1_750_000_000.0


def _bad_targets(tmp_path: Path) -> dict[str, tuple[str, str]]:
    not_a_db = tmp_path / "notadb.db"
    not_a_db.write_bytes(b"this is not a database, just some text " * 100)
    folder = tmp_path / "folder"
    folder.mkdir()
    a_file = tmp_path / "file"
    a_file.write_text("x")
    return {
        "not a database": (
            str(not_a_db),
            "cannot open SQLite store .*notadb.db: file is not a database",
        ),
        "a folder": (str(folder), "is a folder, not a database file"),
        "under a file": (
            str(a_file / "store.db"),
            "cannot create SQLite store .*file/store.db: .*file is a file, not a folder",
        ),
        "foo:// URL": ("foo://host/x", "unknown store URL 'foo://host/x'"),
        "mysql URL": ("mysql://x/y", "unknown store URL"),
        "empty": ("", "no store given"),
        "unreachable PostgreSQL": (
            "postgresql://nobody:secret@127.0.0.1:1/none",
            r"cannot connect to PostgreSQL store postgresql://nobody:\*\*\*@127.0.0.1:1/none: .*"
            r"Connection refused",
        ),
        "postgres:// unreachable": ("postgres://127.0.0.1:1/none", "cannot connect to PostgreSQL"),
        "bad PostgreSQL URL": ("postgresql://host:notaport/db", "PostgreSQL store"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "not a database",
        "a folder",
        "under a file",
        "foo:// URL",
        "mysql URL",
        "empty",
        "unreachable PostgreSQL",
        "postgres:// unreachable",
        "bad PostgreSQL URL",
    ],
)
def test_bad_store_targets_raise_a_store_error_naming_them(tmp_path: Path, case: str) -> None:
    target, message = _bad_targets(tmp_path)[case]
    with pytest.raises(StoreError, match=message) as error:
        open_store(target)
    assert isinstance(error.value, CrowdwatchError)
    assert "secret" not in str(error.value) and "\n" not in str(error.value)


def test_a_closed_store_says_so(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    store.close()
    store.close()
    with pytest.raises(StoreError, match="is closed"):
        store.metrics()


def test_store_files_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = tmp_path / "private" / "store.db"
        store = open_store(path)
        store.write_metrics([MetricSample("gate", "north", T0, {"count": 1.0})])
        store.set_user("maria", "operator", "scrypt$abc")
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        assert all(f.exists() for f in files)
        for file in files:
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
        store.close()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_pragmas_of_a_sqlite_store(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    with store._transaction(write=False) as connection:
        found = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "busy_timeout")
        }
    assert found == {"journal_mode": "wal", "synchronous": 1, "busy_timeout": 30000}
    store.close()


@pytest.mark.parametrize("target", ["file", ":memory:", "postgresql"])
def test_camera_threads_share_one_store(tmp_path: Path, target: str) -> None:
    url = {"file": str(tmp_path / "s.db"), ":memory:": ":memory:"}.get(target)
    store = open_store(url or fresh_database_url())
    frames, cameras = 40, 4
    errors: list[BaseException] = []

    def camera(name: str) -> None:
        try:
            for i in range(frames):
                store.write_metrics(
                    [MetricSample(name, zone, T0 + i, {"count": float(i)}) for zone in "abc"]
                )
                store.upsert_alert(
                    {
                        "id": f"{name}/a/{i // 10}",
                        "camera": name,
                        "zone": "a",
                        "rule": "count",
                        "metric": "count",
                        "level": "warning",
                        "start_s": T0 + i,
                        "opened_s": T0 + i,
                    },
                    now=T0 + i,
                )
                store.latest_metrics(name)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=camera, args=(f"cam{c}",)) for c in range(cameras)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert len(store.metrics()) == frames * cameras * 3
    assert len(store.latest_metrics()) == cameras * 3
    assert len(store.alerts()) == cameras * frames // 10
    store.close()


def test_a_dropped_postgresql_connection_is_replaced() -> None:
    url = fresh_database_url()
    store = open_store(url)
    store.write_metrics([MetricSample("gate", "north", T0, {"count": 1.0})])
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    # The call that meets the dead connection fails with a StoreError; the next one reconnects.
    for attempt in range(2):
        try:
            store.write_metrics([MetricSample("gate", "north", T0 + 1, {"count": 2.0})])
            break
        except StoreError as error:
            assert attempt == 0 and "store postgresql://" in str(error)
    assert [s.value("count") for s in store.metrics("gate")] == [1.0, 2.0]
    store.close()
