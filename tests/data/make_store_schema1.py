"""Make ``store_schema1.db``: a small store as crowdwatch wrote it at schema version 1.

Run it with the schema-1 store code (commit ca8fb76 or any before the SQLAlchemy store), e.g.::

    git worktree add /tmp/schema1 ca8fb76
    PYTHONPATH=/tmp/schema1 python tests/data/make_store_schema1.py tests/data

It fills every table through the public API with fixed values, shrinks the file (1 KiB pages,
vacuumed, still in WAL mode) and writes ``store_schema1.json``: what the public API read back,
which the migration test compares against after the upgrade.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import sys
from pathlib import Path

from crowdwatch.store import (
    CameraHealth,
    MetricSample,
    RecordingEntry,
    open_store,
)

T0 = 1_750_000_000.0
NAME = "store_schema1"


def fill(store) -> None:
    samples = []
    for i in range(4):
        for zone, count in (("road", 5.0 + i), ("crossing", 1.5 * i)):
            samples.append(
                MetricSample(
                    "plaza",
                    zone,
                    T0 + i,
                    {"count": count, "density": count / 20, "occupancy": None, "area_m2": 20.0},
                    frame_index=i * 4,
                    level="advisory" if count > 7 else "normal",
                )
            )
        samples.append(
            MetricSample(
                "plaza",
                "walkway",
                T0 + i,
                {"crossed_in": float(i), "crossed_out": 1.0, "flow_in": 0.25 * i},
                kind="line",
                frame_index=i * 4,
            )
        )
    samples.append(MetricSample("gate", "north", T0 + 1.5, {"count": 3.0}))
    store.write_metrics(samples)

    base = {"camera": "plaza", "metric": "count", "rule": "count", "zone": "road"}
    store.upsert_alert(
        {
            **base,
            "id": "plaza/road/count/1",
            "level": "warning",
            "value": 8.0,
            "peak": 8.0,
            "start_s": T0 + 2,
            "opened_s": T0 + 2.5,
            "end_s": T0 + 3.5,
            "closed_s": T0 + 4,
            "snapshot": "snapshots/plaza_road_1.jpg",
            "message": "road: count 8 above warning 7",
        },
        now=T0 + 4,
    )
    store.upsert_alert(
        {
            **base,
            "id": "plaza/crossing/count/2",
            "zone": "crossing",
            "level": "advisory",
            "value": 4.5,
            "peak": 4.5,
            "start_s": T0 + 3,
            "opened_s": T0 + 3,
        },
        now=T0 + 3,
    )
    store.acknowledge("plaza/road/count/1", "maria", "stewards sent", time_s=T0 + 3)

    for when, state, error in [
        (0.0, "starting", None),
        (0.5, "live", None),
        (2.0, "reconnecting", "stream dropped"),
        (2.8, "live", None),
        (4.0, "stopped", None),
    ]:
        store.set_health(
            CameraHealth("plaza", state, 4.0, 5.0, 16, 2, T0 + when, 1, error, updated=T0 + when)
        )
    store.set_health(CameraHealth("gate", "failed", error="cannot open rtsp://gate", updated=T0))

    config = {
        "event": {"name": "test"},
        "cameras": [{"name": "plaza", "zones": [{"name": "road", "levels": {"warning": 7}}]}],
    }
    store.save_config(config, author="setup", note="first", time_s=T0 - 60)
    config["cameras"][0]["zones"][0]["levels"]["warning"] = 8
    config["cameras"][0]["zones"].append({"name": "crossing"})
    store.save_config(config, author="maria", note="raised warning", time_s=T0 - 30)

    store.add_recording(RecordingEntry("plaza", "segment", T0, T0 + 60, "plaza/seg0.mp4", 12345))
    store.add_recording(
        RecordingEntry("plaza", "snapshot", T0 + 2, T0 + 2, "plaza/heat.npz", 99, "corrupt")
    )
    store.log_action("tom", "login", "console", {"ip": "127.0.0.1"}, time_s=T0 - 10)
    store.set_user("maria", "operator", "scrypt$16384$8$1$c2FsdA==$aGFzaA==")
    store.set_user("tom", "viewer", "scrypt$16384$8$1$c2FsdDI=$aGFzaDI=")


def read_back(store) -> dict:
    """Everything the public API returns, as plain data."""

    def plain(items):
        return [dataclasses.asdict(item) for item in items]

    return {
        "metrics": plain(store.metrics()),
        "latest_metrics": plain(store.latest_metrics()),
        "alerts": plain(store.alerts()),
        "alert_actions": plain(store.alert_actions()),
        "health": plain(store.health()),
        "camera_events": plain(store.camera_events()),
        "config_versions": plain(store.config_versions()),
        "config_changes": plain(store.config_changes()),
        "recordings": plain(store.recordings()),
        "audit_log": plain(store.audit_log()),
        "users": plain(store.users()),
    }


def main(folder: Path) -> None:
    path = folder / f"{NAME}.db"
    for stale in folder.glob(f"{NAME}.db*"):
        stale.unlink()
    store = open_store(path)
    fill(store)
    expected = read_back(store)
    store.close()
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=DELETE")
    connection.execute("PRAGMA page_size=1024")
    connection.execute("VACUUM")
    connection.execute("PRAGMA journal_mode=WAL")
    version = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    connection.close()
    assert version == ("1",) and "alembic_version" not in tables, "run with schema-1 code"
    (folder / f"{NAME}.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    print(f"{path}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent))
