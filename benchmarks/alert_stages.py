"""Where the time of a frame that opens an alert goes, with many deployed cameras live.

Runs ``cameras_capacity.measure`` (the deployed set-up: calibration, zones, a counting line,
flow, pressure, recording, a no-latch count rule that opens alerts as people walk in) with each
stage of a frame's keeping timed: the whole ``RunOutputs.keep``, the alert snapshot's drawing
(``CameraAnalyzer.annotate``) and saving, the JSONL and store alert sinks, the store's metrics
and alert writes, and the wait from capture to the start of the analysis. Stages are split by
whether the frame opened an alert. Prints the capacity row (rates, cores, p95 latencies) and
mean / p95 / max per stage. ``--aligned-ticks`` gives every camera its first tick at once (the
engine before ``CameraWorker.tick_phase_s`` staggered them), to measure what staggering buys.

    python benchmarks/alert_stages.py [--cameras 12] [--substream 640x360] [--seconds 25]
    python benchmarks/alert_stages.py --aligned-ticks
"""

from __future__ import annotations

import argparse
import collections
import functools
import os
import tempfile
import threading
import time
from pathlib import Path

import cameras_capacity
import numpy as np

from crowdwatch.alerts.sinks import JsonlAlertLog
from crowdwatch.engine.worker import CameraWorker
from crowdwatch.pipeline.camera import CameraAnalyzer
from crowdwatch.pipeline.outputs import RunOutputs
from crowdwatch.store.sinks import StoreAlertSink
from crowdwatch.store.sql import SqlStore

#: (class, method, label) of the stages timed.
STAGES = [
    (RunOutputs, "keep", "keep (everything a frame leaves)"),
    (CameraAnalyzer, "annotate", "snapshot drawing (annotate)"),
    (RunOutputs, "_save_snapshot", "snapshot saving (JPEG)"),
    (JsonlAlertLog, "emit", "alert log line (JSONL)"),
    (StoreAlertSink, "emit", "alert to the store"),
    (SqlStore, "upsert_alert", "store: alert write"),
    (SqlStore, "write_metrics", "store: metrics write"),
]

_frame = threading.local()  # whether the frame this thread is keeping opened an alert
_times: dict[tuple[str, bool], list[float]] = collections.defaultdict(list)


def _timed(method, label: str):
    @functools.wraps(method)
    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            opening = getattr(_frame, "opening", False)
            _times[label, opening].append(time.perf_counter() - started)

    return timed


def instrument() -> None:
    """Wrap every stage, note whether each analysed frame opened an alert, and time the wait
    from capture to the analysis."""
    for cls, name, label in STAGES:
        setattr(cls, name, _timed(getattr(cls, name), label))
    process = CameraAnalyzer.process

    def process_noting_alerts(self, frame):
        result = process(self, frame)
        _frame.opening = any(event.kind == "opened" for event in result.events)
        return result

    CameraAnalyzer.process = process_noting_alerts
    analyse = CameraWorker._analyse

    def analyse_timing_the_wait(self, grab):
        _times["capture -> analysis starts", False].append(time.time() - grab.captured)
        return analyse(self, grab)

    CameraWorker._analyse = analyse_timing_the_wait


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=12)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--substream", default="640x360", help="WxH, or '' for none")
    parser.add_argument("--fps", type=float, default=2.0)
    parser.add_argument("--stream-fps", type=int, default=25)
    parser.add_argument("--warmup", type=float, default=8.0)
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--aligned-ticks", action="store_true", help="no staggering (before)")
    args = parser.parse_args()
    instrument()
    if args.aligned_ticks:
        CameraWorker.tick_phase_s = lambda self: 0.0  # type: ignore[method-assign]
    width, height = (int(v) for v in args.size.split("x"))
    clip_s = int(args.warmup + args.seconds) + 5
    with tempfile.TemporaryDirectory() as folder:
        clip = cameras_capacity.make_clip(Path(folder), width, height, args.stream_fps, clip_s)
        substream = None
        if args.substream:
            sub_w, sub_h = (int(v) for v in args.substream.split("x"))
            substream = cameras_capacity.make_clip(
                Path(folder), sub_w, sub_h, args.stream_fps, clip_s
            )
        row = cameras_capacity.measure(
            args.cameras, clip, args.fps, args.warmup, args.seconds, "deployed", substream
        )
    print(f"# alert_stages {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
          f"{args.cameras} deployed cameras, {args.substream or args.size} analysed, "
          f"{'aligned' if args.aligned_ticks else 'staggered'} ticks, "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    keys = ("min_fps", "skipped_ticks", "cpu_cores", "metrics_latency_p95_s",
            "alert_latency_p95_s", "alerts_opened")  # fmt: skip
    print("  ".join(f"{key} {row[key]}" for key in keys))
    print(f"{'stage':34s} {'frames':>14s} {'n':>6s} {'mean ms':>8s} {'p95 ms':>8s} {'max ms':>8s}")
    for (label, opening), values in sorted(_times.items()):
        ms = 1000 * np.asarray(values)
        kind = "opening alerts" if opening else "other"
        print(f"{label:34s} {kind:>14s} {len(ms):6d} {ms.mean():8.1f} "
              f"{np.percentile(ms, 95):8.1f} {ms.max():8.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
