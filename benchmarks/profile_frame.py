"""Where a frame's time goes: ``CameraAnalyzer.process`` + ``annotate`` under cProfile.

Runs the calibrated sample config (``sample_videos/pets2009_s2l1.yaml``: calibration, two zones,
a counting line, flow and pressure) with the shipped density model over the first frames of the
PETS clip, and prints milliseconds per frame for each stage (cumulative time of the functions
that make it), then the same for the uncalibrated default config.

    python benchmarks/profile_frame.py [--frames 60] [--top 25]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from pathlib import Path

from pipeline_speed import read_frames

from crowdwatch.config import default_config, load_config
from crowdwatch.estimators.density import DensityEstimator
from crowdwatch.paths import sample_video
from crowdwatch.pipeline.camera import CameraAnalyzer
from crowdwatch.pipeline.threads import limit_opencv_threads
from crowdwatch.types import Frame

#: (stage label, function name, file fragment) whose cumulative time makes each stage.
STAGES = [
    ("density model (onnxruntime run)", ["run"], "onnxruntime_inference_collection"),
    ("input preparation (prepare_input)", ["prepare_input"], "estimators/density.py"),
    ("density to frame + peaks", ["density_to_frame", "_cell_peaks"], "estimators/density.py"),
    ("optical flow (FlowStream)", ["update", "update_reduced"], "optical_flow.py"),
    ("crowd velocity", ["crowd_velocity", "crowd_velocity_reduced"], "optical_flow.py"),
    ("crowd pressure map (crowd_pressure_map)", ["crowd_pressure_map"], "pressure.py"),
    ("zone mean speed (zone_mean_speed)", ["zone_mean_speed"], "pressure.py"),
    ("zone pressure (people-weighted mean)", ["_people_weighted_mean", "people_weighted_mean"], ""),
    ("mass reductions (reduce_mass, every caller)", ["reduce_mass"], "heatmap/density.py"),
    ("people/m2 at the motion field (grid_at)", ["grid_at"], "metric_density.py"),
    ("line flow meter (LineFlowMeter.update)", ["update"], "lines.py"),
    ("ground grid (ground_grid)", ["ground_grid"], "metric_density.py"),
    ("per-pixel people/m2 (grid_to_image)", ["grid_to_image"], "metric_density.py"),
    ("live heat map (LiveHeatmap.update)", ["update"], "live.py"),
    ("zone counts (Zone.count)", ["count"], "zone.py"),
    ("alerts (_alerts)", ["_alerts"], "camera.py"),
    ("display: draw_density_m2", ["draw_density_m2"], "draw.py"),
    ("display: draw_heatmap", ["draw_heatmap"], "draw.py"),
    ("CameraAnalyzer.process", ["process"], "camera.py"),
    ("CameraAnalyzer.annotate", ["annotate"], "camera.py"),
]


def profile(camera, estimator, frames: list[Frame], warmup: int = 3) -> tuple[dict, float]:
    analyzer = CameraAnalyzer(camera, estimator)
    for frame in frames[:warmup]:
        analyzer.annotate(analyzer.process(frame))
    measured = frames[warmup:]
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for frame in measured:
        analyzer.annotate(analyzer.process(frame))
    profiler.disable()
    wall_ms = (time.perf_counter() - started) * 1000 / len(measured)
    stats = pstats.Stats(profiler)
    table = {}
    for label, names, fragment in STAGES:
        total = 0.0
        for (path, _line, function), (_cc, _nc, _tt, cumulative, _callers) in stats.stats.items():
            if function in names and fragment in path:
                total += cumulative
        table[label] = 1000 * total / len(measured)
    return table, wall_ms, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--top", type=int, default=0, help="also print the top N functions")
    parser.add_argument(
        "--config",
        default=str(Path(__file__).resolve().parents[1] / "sample_videos" / "pets2009_s2l1.yaml"),
    )
    args = parser.parse_args()
    limit_opencv_threads()  # as analyze and the engine run
    frames = read_frames(args.frames + 3)
    estimator = DensityEstimator()
    calibrated = load_config(args.config).cameras[0]
    bare = default_config(str(sample_video())).cameras[0]
    results = {}
    for name, camera in (("calibrated", calibrated), ("uncalibrated", bare)):
        table, wall_ms, stats = profile(camera, estimator, frames)
        results[name] = (table, wall_ms)
        if args.top:
            print(f"--- {name}")
            stats.sort_stats("tottime").print_stats(args.top)
    print(f"{'stage':45s} {'calibrated':>11s} {'uncalibrated':>13s}  (ms per frame, cProfile)")
    for label, *_ in STAGES:
        values = [results[n][0][label] for n in ("calibrated", "uncalibrated")]
        print(f"{label:45s} {values[0]:11.1f} {values[1]:13.1f}")
    walls = [results[n][1] for n in ("calibrated", "uncalibrated")]
    print(f"{'whole frame, wall (profiled)':45s} {walls[0]:11.1f} {walls[1]:13.1f}")
    for name in ("calibrated", "uncalibrated"):
        table, wall = results[name]
        model = table["density model (onnxruntime run)"]
        print(
            f"{name}: everything except the model {wall - model:.1f} ms = "
            f"{100 * (wall - model) / model:.0f}% of the model's {model:.1f} ms"
        )


if __name__ == "__main__":
    main()
