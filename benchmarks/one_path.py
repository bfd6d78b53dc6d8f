"""``crowdwatch run`` next to ``crowdwatch analyze`` on the bundled clip and sample config.

Both take the calibrated sample config (zones ``road`` and ``crossing``, the ``walkway`` counting
line, flow and pressure) and the shipped density model. ``analyze`` reads every frame of the
clip; the live engine plays the same file as a camera at its true 7 frames/s and analyses the
newest frame at 2 frames/s, as it would a live stream. Frames are matched by their number in the
file; the per-frame zone counts and densities must be the same (the issue this benchmark
closes measured the engine 13 – 37 % low), and flows and alerts follow the same code.

Run: ``python benchmarks/one_path.py [--frames 400] [--seconds 60]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from crowdwatch.config import load_config
from crowdwatch.engine import Engine, EngineOptions, WorkerOptions
from crowdwatch.paths import sample_config
from crowdwatch.pipeline import AnalysisOptions, analyze
from crowdwatch.store import open_store


def _counts(store_path: Path) -> dict[tuple[str, int], tuple[float, float | None]]:
    with open_store(store_path) as store:
        samples = store.metrics("plaza")
        alerts = store.alerts(camera="plaza")
    counts = {
        (s.zone, s.frame_index): (s.value("count"), s.value("density"))
        for s in samples
        if s.kind == "zone"
    }
    print(f"  {len(samples)} metric rows, {len(alerts)} alerts")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=400, help="frames analyze reads")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the engine runs")
    args = parser.parse_args()
    config = load_config(sample_config())
    folder = Path(tempfile.mkdtemp(prefix="crowdwatch-one-path-"))

    started = time.perf_counter()
    analyze(
        None,
        config,
        folder / "analyze",
        AnalysisOptions(max_frames=args.frames, write_video=False, progress=False),
        store=folder / "analyze.db",
    )
    print(f"analyze: {args.frames} frames in {time.perf_counter() - started:.0f} s")
    reference = _counts(folder / "analyze.db")

    store = open_store(folder / "engine.db")
    engine = Engine(config, store, EngineOptions(worker=WorkerOptions(default_fps=2.0)))
    engine.run(duration_s=args.seconds)
    store.close()
    print(f"run: {args.seconds:.0f} s of the clip played live, analysed at 2 frames/s")
    live = _counts(folder / "engine.db")

    print("zone      frames  analyze mean  run mean  median run/analyze  max |difference|")
    for zone in ("road", "crossing"):
        matched = sorted(key for key in live if key[0] == zone and key in reference)
        ours = [reference[key][0] for key in matched]
        theirs = [live[key][0] for key in matched]
        ratios = [b / a for a, b in zip(ours, theirs, strict=True) if a > 0]
        worst = max(abs(a - b) for a, b in zip(ours, theirs, strict=True))
        print(
            f"{zone:9} {len(matched):6}  {statistics.fmean(ours):12.3f}  "
            f"{statistics.fmean(theirs):8.3f}  {statistics.median(ratios):18.4f}  {worst:.2e}"
        )
    print(f"(stores in {folder})")


if __name__ == "__main__":
    main()
