"""People per m² and counting-line crossings as the crowdwatch pipeline measures them, on PETS 2009.

The ground truth (MOT15 tracks with ground positions in metres) gives a real calibration of the
camera and the true answers. This script calibrates the camera from six ground-truth foot points,
draws a 6 m x 6 m ground region as a zone and a 9 m counting line, runs ``crowdwatch.analyze``
over the whole clip with each estimator, and compares its ``metrics.csv`` and ``lines.csv`` with
the truth. The ground-truth helpers (regions, lines, crossings) are shared with
``pets_ground_truth.py``, which measures the same things one module at a time.

    python benchmarks/pets_safety.py [--estimators ssd density] [--frames 795]
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pets_ground_truth as truth_tools  # noqa: E402

from crowdwatch.config import EstimatorConfig, parse_config  # noqa: E402
from crowdwatch.estimators import make_estimator  # noqa: E402
from crowdwatch.paths import sample_video  # noqa: E402
from crowdwatch.pipeline import AnalysisOptions, analyze  # noqa: E402


def event_config(truth: truth_tools.GroundTruth, calibration) -> dict:
    """The PETS camera calibrated from six ground-truth feet, with the region and the line."""
    marks = truth_tools.spread_points(truth.ground_m, truth_tools.CALIBRATION_MARKS)
    line = truth_tools.counting_line(calibration)
    region = truth_tools.region_polygon_px(calibration).tolist()
    return {
        "cameras": [{
            "name": "pets",
            "source": str(sample_video()),
            "calibration": {
                "image_points": truth.feet_px[marks].tolist(),
                "ground_points": truth.ground_m[marks].tolist(),
            },
            "zones": [{"name": "region", "polygon": region}],
            "lines": [{"name": "line", "start": list(line.start), "end": list(line.end)}],
        }]
    }  # fmt: skip


def run(kind: str, config: dict, frames: int, truth: truth_tools.GroundTruth) -> None:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        started = time.perf_counter()
        options = AnalysisOptions(max_frames=frames, write_video=False, progress=False)
        analyze(None, parse_config(config), out, options,
                estimator=make_estimator(EstimatorConfig(kind=kind)))  # fmt: skip
        seconds = time.perf_counter() - started
        zone = list(csv.DictReader((out / "metrics.csv").open()))
        lines = list(csv.DictReader((out / "lines.csv").open()))
    area = float(zone[0]["area_m2"])
    measured = np.array([float(row["density"]) for row in zone])
    true_counts = truth_tools.true_region_counts(truth, frames)
    true_density = true_counts / area
    crossed_in, crossed_out = float(lines[-1]["crossed_in"]), float(lines[-1]["crossed_out"])
    print(f"[{kind}] {frames} frames in {seconds:.0f} s ({frames / seconds:.1f} frames/s, "
          "estimator + motion + flow + alerts)")  # fmt: skip
    print(f"    region {area:.1f} m²: true mean {true_density.mean():.4f}/m², measured "
          f"{measured.mean():.4f}/m²; per-frame MAE {np.abs(measured - true_density).mean():.4f}"
          f"/m² ({np.abs(measured - true_density).mean() * area:.2f} people), bias "
          f"{(measured - true_density).mean():+.4f}/m²")  # fmt: skip
    speeds = np.array([float(row["mean_speed"] or "nan") for row in zone])
    true_speeds = truth_tools.true_region_speeds(truth, frames)[: len(speeds)]
    both = np.isfinite(speeds) & np.isfinite(true_speeds)
    print(f"    walking speed in the region ({both.sum()} frames with people): true mean "
          f"{true_speeds[both].mean():.3f} m/s, measured {speeds[both].mean():.3f} m/s; "
          f"per-frame MAE {np.abs(speeds[both] - true_speeds[both]).mean():.3f} m/s")  # fmt: skip
    print(f"    line {float(lines[0]['length_m']):.2f} m: crossings in/out measured "
          f"{crossed_in:.1f}/{crossed_out:.1f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estimators", nargs="+", default=["ssd", "density"])
    parser.add_argument("--frames", type=int, default=795)
    args = parser.parse_args()
    truth = truth_tools.GroundTruth.load(
        truth_tools.data_root() / "pets2009_vtest" / "mot15_gt.txt"
    )
    print(f"# PETS 2009 S2L1 through crowdwatch.analyze, {time.strftime('%Y-%m-%d')}")
    calibration = truth_tools.check_calibration(truth)
    config = event_config(truth, calibration)
    line = truth_tools.counting_line(calibration)
    sign = truth_tools.positive_ground_side(calibration, line)
    positive, negative = truth_tools.true_line_crossings(truth, sign, args.frames)
    print(f"    true crossings of the line in/out: {positive}/{negative}")
    for kind in args.estimators:
        run(kind, config, args.frames, truth)


if __name__ == "__main__":
    main()
