"""Latency from a frame being captured to its alert being in the store.

A camera plays the bundled PETS clip live through the engine; small zones along the walkway have
a count rule with no latch and no cooldown, so an alert opens each time someone walks in. For
each alert a separate reader (as the console) polls the store every few milliseconds and notes
when the alert became visible; the alert's ``opened`` time is the capture time of the frame
that opened it. Prints the median, 95th percentile and maximum of both:

- capture -> committed: measured by the worker right after its write returned;
- capture -> visible to a reader: what an operator's console can see.

The capture time is when the frame was read from the stream: the camera's own encoding and
network delay come on top. A rule's ``latch_s`` adds its latch by design; this uses none.

    python benchmarks/alert_latency.py --seconds 60 --cameras 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

from crowdwatch.config import parse_config
from crowdwatch.engine import Engine, EngineOptions, WorkerOptions
from crowdwatch.paths import sample_video
from crowdwatch.store import open_store

# Small zones across the PETS walkway (image pixels of the 768x576 clip).
ZONES = [(x, y) for x in (60, 200, 340, 480, 620) for y in (200, 300)]


def event_config(cameras: int, fps: float) -> dict:
    rule = {
        "metric": "count",
        "latch_s": 0,
        "clear_latch_s": 0,
        "cooldown_s": 0,
        "levels": {"advisory": {"threshold": 0.4, "clear": 0.2}},
    }
    zones = [
        {"name": f"z{x}_{y}", "polygon": [[x, y], [x + 90, y], [x + 90, y + 90], [x, y + 90]],
         "alerts": [rule]}
        for x, y in ZONES
    ]  # fmt: skip
    return {
        "cameras": [
            {"name": f"cam{i}", "source": str(sample_video()), "analysis_fps": fps, "zones": zones}
            for i in range(cameras)
        ]
    }


def watch_store(path: Path, stop: threading.Event, seen: dict[str, float]) -> None:
    """Poll the store like a console would; note when each alert first shows up."""
    reader = open_store(path)
    while not stop.is_set():
        for alert in reader.alerts(limit=500):
            seen.setdefault(alert.id, time.time())
        stop.wait(0.005)
    reader.close()


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "median_ms": round(1000 * statistics.median(ordered), 1),
        "p95_ms": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 1),
        "max_ms": round(1000 * ordered[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--cameras", type=int, default=1)
    parser.add_argument("--fps", type=float, default=2.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    config = parse_config(event_config(args.cameras, args.fps))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "store.db"
        store = open_store(path)
        engine = Engine(config, store, EngineOptions(worker=WorkerOptions(default_fps=args.fps)))
        seen: dict[str, float] = {}
        stop = threading.Event()
        watcher = threading.Thread(target=watch_store, args=(path, stop, seen), daemon=True)
        engine.start()
        watcher.start()
        try:
            time.sleep(args.seconds)
        finally:
            committed = [s for w in engine.workers.values() for s in w.stats.alert_latency_s]
            analysis = [s for w in engine.workers.values() for s in w.stats.analysis_s]
            engine.stop()
            time.sleep(0.2)
            stop.set()
            watcher.join()
        visible = [
            seen[alert.id] - alert.opened
            for alert in store.alerts()
            if alert.id in seen and alert.record.get("end_reason") != "stream_end"
        ]
        store.close()
    results = {
        "cameras": args.cameras,
        "fps": args.fps,
        "capture_to_committed": percentiles(committed),
        "capture_to_visible": percentiles(visible),
        "analysis_per_frame": percentiles(analysis),
    }
    for name in ("capture_to_committed", "capture_to_visible", "analysis_per_frame"):
        row = results[name]
        print(f"{name.replace('_', ' ')}: median {row['median_ms']} ms, p95 {row['p95_ms']} ms, "
              f"max {row['max_ms']} ms over {row['n']}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
