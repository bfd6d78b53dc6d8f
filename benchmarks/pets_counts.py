"""People counts on the bundled PETS 2009 clip against its per-frame ground truth, and speed.

Runs the full analysis pipeline (estimator, heat map, zones, alerts, annotated video) over the
clip and compares each analysed frame's total count with ``vtest_counts.csv`` (people annotated
in that frame). Prints MAE, RMSE, bias and frames per second for each estimator asked for.

    python benchmarks/pets_counts.py                 # ssd and density, every frame
    python benchmarks/pets_counts.py --estimators ssd --every 5
    python benchmarks/pets_counts.py --estimators density+ssd   # the density model, sparse gate on
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from crowdwatch.config import EstimatorConfig, default_config
from crowdwatch.estimators import make_estimator
from crowdwatch.evaluation.datasets import data_root
from crowdwatch.paths import sample_video
from crowdwatch.pipeline import AnalysisOptions, analyze


def ground_truth(path: Path) -> dict[int, int]:
    with path.open() as handle:
        return {
            int(row["video_frame_index"]): int(row["count_all"]) for row in csv.DictReader(handle)
        }


def run(kind: str, every: int, truth: dict[int, int]) -> dict[str, float | str | int]:
    if kind == "density+ssd":  # the density model with its sparse-scene gate
        estimator = make_estimator(EstimatorConfig(kind="density", sparse_gate={}))
    else:
        estimator = make_estimator(EstimatorConfig(kind=kind))
    config = default_config(str(sample_video()))
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        summary = analyze(None, config, Path(out), AnalysisOptions(every=every, progress=False),
                          estimator=estimator)  # fmt: skip
        wall = time.perf_counter() - started
        with (Path(out) / "metrics.csv").open() as handle:
            counts = {int(r["frame_index"]): float(r["count"]) for r in csv.DictReader(handle)}
    frames = sorted(set(counts) & set(truth))
    predicted = np.array([counts[i] for i in frames])
    actual = np.array([truth[i] for i in frames])
    errors = predicted - actual
    return {
        "estimator": kind,
        "frames": len(frames),
        "mae": round(float(np.abs(errors).mean()), 3),
        "rmse": round(float(np.sqrt((errors**2).mean())), 3),
        "bias": round(float(errors.mean()), 3),
        "mean_true": round(float(actual.mean()), 2),
        "pipeline_fps": round(summary.frames_analysed / wall, 2),
        "estimator_ms": round(summary.estimator_ms_per_frame, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estimators", nargs="+", default=["ssd", "density"])
    parser.add_argument("--every", type=int, default=1, help="analyse every N-th frame")
    args = parser.parse_args()
    truth = ground_truth(data_root() / "pets2009_vtest" / "vtest_counts.csv")
    print(f"# PETS 2009 S2L1 clip, {platform.processor() or platform.machine()}, "
          f"{time.strftime('%Y-%m-%d')}")  # fmt: skip
    for kind in args.estimators:
        print(json.dumps(run(kind, args.every, truth)))


if __name__ == "__main__":
    main()
