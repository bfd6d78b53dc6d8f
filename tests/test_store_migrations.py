"""Schema revisions: a store written by an older crowdwatch is upgraded in place, every row kept;
one written by a newer crowdwatch is refused; the tables and the migrations agree."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pgserver import fresh_database_url

from crowdwatch.errors import CrowdwatchError
from crowdwatch.store import StoreError, open_store, schema
from crowdwatch.store import migrations as store_migrations

DATA = Path(__file__).parent / "data"
sys.path.insert(0, str(DATA))
from make_store_schema1 import read_back  # noqa: E402


def _sqlalchemy_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def _revision_and_version(engine: sa.Engine) -> tuple[str, str]:
    with engine.connect() as connection:
        revision = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        version = connection.execute(
            sa.text("SELECT value FROM meta WHERE key = 'schema_version'")
        ).scalar()
    return revision, version


def test_a_schema1_store_from_the_old_release_is_upgraded_with_every_row_kept(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    shutil.copy(DATA / "store_schema1.db", path)
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert "alembic_version" not in tables and "runs" not in tables
    expected = json.loads((DATA / "store_schema1.json").read_text())

    store = open_store(path)
    found = read_back(store)
    # Rows from before runs existed have no run id; everything else is as the old code read it.
    for table in ("metrics", "latest_metrics", "alerts"):
        assert {row.pop("run_id") for row in found[table]} == {None}
    assert found == expected
    assert all(expected[table] for table in expected), "the fixture has rows in every table"
    # The upgraded store takes the new things too.
    run = store.start_run("plaza", "analyze", started=1.0)
    assert store.runs("plaza")[0].id == run
    store.close()

    engine = sa.create_engine(f"sqlite:///{path}")
    assert _revision_and_version(engine) == (schema.HEAD, str(len(schema.REVISIONS)))
    engine.dispose()
    # Opening it again changes nothing.
    assert read_back(open_store(path))["alerts"][0]["id"] == expected["alerts"][0]["id"]


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(tmp_path / "store.db") if request.param == "sqlite" else fresh_database_url()


def _engine(target: str) -> sa.Engine:
    if "://" in target:
        return sa.create_engine(_sqlalchemy_url(target))
    return sa.create_engine(f"sqlite:///{target}")


def _make_schema1_store(target: str) -> None:
    """A store as the schema-1 release left it: its tables, ``meta.schema_version = 1``, rows,
    and no ``alembic_version``."""
    from alembic import command
    from alembic.config import Config

    engine = _engine(target)
    with engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(store_migrations.FOLDER))
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(sa.text("DROP TABLE alembic_version"))
        connection.execute(
            sa.text(
                "INSERT INTO metrics (camera, zone, kind, time, frame_index, level, count, extra) "
                "VALUES ('gate', 'north', 'zone', 10.0, 3, 'normal', 4.0, '{\"flow_in\": 1.5}')"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO alerts (id, camera, zone, rule, metric, level, value, peak, "
                "start_time, opened, updated, record) VALUES ('a1', 'gate', 'north', 'count', "
                "'count', 'warning', 9.0, 9.5, 10.0, 11.0, 12.0, '{\"id\": \"a1\"}')"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO audit_log (time, actor, action, target, detail) "
                "VALUES (5.0, 'maria', 'login', 'console', '{}')"
            )
        )
    engine.dispose()


def test_schema1_stores_are_stamped_and_upgraded_on_both_databases(database: str) -> None:
    _make_schema1_store(database)
    store = open_store(database)
    (sample,) = store.metrics("gate")
    assert (sample.time, sample.frame_index, sample.run_id) == (10.0, 3, None)
    assert sample.values == {
        "count": 4.0,
        "density": None,
        "occupancy": None,
        "area_m2": None,
        "flow_in": 1.5,
    }
    (alert,) = store.alerts()
    assert (alert.id, alert.peak, alert.opened, alert.record) == ("a1", 9.5, 11.0, {"id": "a1"})
    assert store.audit_log()[0].actor == "maria"
    store.write_metrics([dataclasses.replace(sample, time=11.0)], run_id="r1")
    assert [s.run_id for s in store.metrics("gate")] == [None, "r1"]
    store.close()
    engine = _engine(database)
    assert _revision_and_version(engine) == (schema.HEAD, str(len(schema.REVISIONS)))
    engine.dispose()


def test_a_new_store_is_at_the_newest_revision_and_matches_the_table_definitions(
    database: str,
) -> None:
    open_store(database).close()
    engine = _engine(database)
    assert _revision_and_version(engine) == (schema.HEAD, str(len(schema.REVISIONS)))
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, schema.metadata)
    engine.dispose()
    # Schema 1 declared single-column primary keys without NOT NULL; SQLite (unlike
    # PostgreSQL) then reports them nullable. That is the only difference allowed.
    sqlite_primary_keys = [
        d
        for d in differences
        if isinstance(d, list)
        and d[0][0] == "modify_nullable"
        and "://" not in database
        and schema.metadata.tables[d[0][2]].c[d[0][3]].primary_key
    ]
    assert [d for d in differences if d not in sqlite_primary_keys] == []


def test_the_revision_list_is_the_migration_chain() -> None:
    scripts = ScriptDirectory(str(store_migrations.FOLDER))
    chain = [script.revision for script in scripts.walk_revisions()][::-1]
    assert tuple(chain) == schema.REVISIONS and scripts.get_current_head() == schema.HEAD


def test_a_store_from_a_newer_crowdwatch_is_refused(database: str) -> None:
    open_store(database).close()
    engine = _engine(database)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    with pytest.raises(StoreError, match="revision 0099, newer than this crowdwatch") as error:
        open_store(database)
    assert isinstance(error.value, CrowdwatchError)


def test_a_newer_schema_version_without_revision_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    connection.execute("INSERT INTO meta VALUES ('schema_version', '7')")
    connection.commit()
    connection.close()
    with pytest.raises(StoreError, match="schema version 7, newer than this crowdwatch"):
        open_store(path)


def test_downgrade_to_schema1_and_upgrade_again_keeps_rows(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    path = tmp_path / "store.db"
    shutil.copy(DATA / "store_schema1.db", path)
    open_store(path).close()
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(store_migrations.FOLDER))
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
    engine.dispose()
    columns = [row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(metrics)")]
    assert "run_id" not in columns
    expected = json.loads((DATA / "store_schema1.json").read_text())
    found = read_back(open_store(path))
    for table in ("metrics", "latest_metrics", "alerts"):
        for row in found[table]:
            row.pop("run_id")
    assert found == expected


@pytest.mark.parametrize("start", ["fresh", "schema1"])
def test_stores_opened_at_once_migrate_once(tmp_path: Path, start: str) -> None:
    path = tmp_path / "store.db"
    if start == "schema1":
        shutil.copy(DATA / "store_schema1.db", path)
    opened, errors = _open_at_once(path, connections=4)
    assert errors == [] and len(opened) == 4
    for store in opened:
        store.close()
    engine = sa.create_engine(f"sqlite:///{path}")
    assert _revision_and_version(engine) == (schema.HEAD, str(len(schema.REVISIONS)))
    engine.dispose()
    if start == "schema1":
        expected = json.loads((DATA / "store_schema1.json").read_text())
        assert len(read_back(open_store(path))["metrics"]) == len(expected["metrics"])


def test_a_new_store_opened_by_many_at_once_opens_for_all(tmp_path: Path) -> None:
    """Eight connections opening one new SQLite file at once, forty times over: switching it to
    WAL takes a lock SQLite's busy timeout does not wait for, so before the retry about one
    round in sixty failed with "database is locked" (CI saw it once)."""
    for round_ in range(40):
        opened, errors = _open_at_once(tmp_path / f"store{round_}.db", connections=8)
        for store in opened:
            store.close()
        assert errors == [] and len(opened) == 8, f"round {round_}: {errors}"


def _open_at_once(path: Path, *, connections: int) -> tuple[list, list[Exception]]:
    """``open_store(path)`` from ``connections`` threads released together: the stores opened
    and the errors raised."""
    barrier = threading.Barrier(connections)
    opened, errors = [], []

    def open_it() -> None:
        barrier.wait()
        try:
            opened.append(open_store(path))
        except Exception as error:  # noqa: BLE001 - reported by the caller
            errors.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return opened, errors
