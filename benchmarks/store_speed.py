"""Time the store's hot paths, the schema-1 store (hand-written SQL, from git) beside this one.

    python benchmarks/store_speed.py [old-commit]

Each round writes one frame's metrics (3 zone samples and 1 line sample, one transaction) and
updates one alert, on a SQLite file in a temporary folder, old and new store taking turns so that
a busy machine slows both alike. Prints the median round's time per call (wall and CPU time) and
the ratio new / old.
"""

from __future__ import annotations

import importlib.util
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from crowdwatch.store import MetricSample, open_store

REPO = Path(__file__).resolve().parents[1]
ROUNDS, CALLS = 40, 100
# Wall time, and this process's CPU time (less disturbed by other work on a busy machine).
CLOCKS = (time.perf_counter, time.process_time)
T0 = 1_750_000_000.0


def old_store(commit: str, path: Path):
    """The store of ``commit`` (before SQLAlchemy) on a SQLite file, opened as it opened it."""
    source = subprocess.run(
        ["git", "show", f"{commit}:crowdwatch/store/sql.py"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    spec = importlib.util.spec_from_loader("old_store_sql", loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    exec(compile(source, "old_store_sql.py", "exec"), module.__dict__)
    connection = sqlite3.connect(
        path, timeout=30.0, check_same_thread=False, isolation_level="DEFERRED"
    )
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA busy_timeout=30000")
    return module.SqlStore(connection, module.SQLITE, f"sqlite:///{path}")


def frame(i: int) -> list[MetricSample]:
    when = T0 + i * 0.25
    zones = [
        MetricSample(
            "plaza",
            zone,
            when,
            {"count": 3.0 + i % 5, "density": 0.4, "occupancy": None, "area_m2": 20.0},
            frame_index=i,
            level="normal",
        )
        for zone in ("road", "crossing", "gate")
    ]
    line = MetricSample(
        "plaza", "walkway", when, {"crossed_in": 1.0, "crossed_out": 2.0}, kind="line"
    )
    return [*zones, line]


def alert(i: int) -> dict:
    return {
        "id": f"plaza/road/count/{i // 20}",
        "camera": "plaza",
        "zone": "road",
        "rule": "count",
        "metric": "count",
        "level": "warning",
        "value": 8.0 + i % 3,
        "peak": 10.0,
        "start_s": T0 + i,
        "opened_s": T0 + i,
        "message": "road: count above warning",
    }


def time_calls(call, start: int, clock) -> float:
    began = clock()
    for i in range(start, start + CALLS):
        call(i)
    return (clock() - began) / CALLS


def main(commit: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        stores = {
            "old": old_store(commit, Path(folder) / "old.db"),
            "new": open_store(Path(folder) / "new.db"),
        }
        times: dict[tuple[str, str], list[float]] = {}
        for round_ in range(ROUNDS):
            for name, store in stores.items():
                start = round_ * CALLS
                for what, call in (
                    ("write_metrics", lambda i, s=store: s.write_metrics(frame(i))),
                    ("upsert_alert", lambda i, s=store: s.upsert_alert(alert(i), now=T0 + i)),
                ):
                    clock = CLOCKS[round_ % 2]
                    times.setdefault((what, name, clock.__name__), []).append(
                        time_calls(call, start, clock)
                    )
        for what in ("write_metrics", "upsert_alert"):
            for clock in CLOCKS:
                found = [times[(what, name, clock.__name__)] for name in ("old", "new")]
                old, new = (statistics.median(t) for t in found)
                print(
                    f"{what:14s} {clock.__name__:13s} old {old * 1e6:7.1f} us  "
                    f"new {new * 1e6:7.1f} us  new/old {new / old:.2f}"
                )
        for store in stores.values():
            store.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "ca8fb76")
