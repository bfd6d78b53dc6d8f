"""Frames per second of crowdwatch's pipelines beside ultralytics' ``solutions.Heatmap``, one run.

On the same decoded frames of the bundled PETS 2009 clip (768x576), in one process, this times:

- **calibrated**: ``CameraAnalyzer.process_stream`` + ``annotate`` as ``analyze`` runs it
  writing its annotated video, with its own plan for the machine (``look_ahead_plan``: on 2 or
  more cores one frame per core estimated at once on single-threaded sessions while this one
  is measured and drawn), on the sample config (``sample_videos/pets2009_s2l1.yaml``: ground
  calibration, two zones, a counting line, optical flow, crowd velocity and pressure, line
  flow, alerts, the banded people/m² overlay);
- **calibrated 1 ahead**: the same with one frame ahead on a session with every core (how
  ``analyze`` ran before 2026-12-03, for comparison with the earlier figures);
- **calibrated live**: ``process`` frame by frame without drawing, as the live engine runs one
  camera (it draws only an alert's snapshot; the recording keeps the raw frame and its density);
- **uncalibrated**: as **calibrated** on the default config (one whole-frame zone, heat
  overlay);
- **model alone**: the density model's onnxruntime ``run`` on prepared inputs, one call at a
  time on every core; **model side by side**: the same with one call per core at once on
  single-threaded sessions (the model's share of the look-ahead variants);
- **ultralytics**: ``solutions.Heatmap`` with yolo11n built from its yaml (random weights, nothing
  downloaded), torch on 2 threads: detection, tracking and its heat map overlay.

crowdwatch runs its default density model (the int8 file); ``--model`` times another file (the
float one, say).

Each runs as its users run it: crowdwatch with OpenCV on one thread (``analyze`` and the engine
set it, see ``crowdwatch/pipeline/threads.py``), ultralytics with OpenCV's default thread count
(restored around its calls).

The variants take turns in rounds of ``--chunk`` frames, so that a change in the machine's other
load touches them all alike; frames/s is frames over the summed wall time of each variant, and
CPU ms per frame (this process's user + system time) is printed beside it. It then prints the
ratios to ultralytics (targets: calibrated >= 3x, uncalibrated >= 5x) and everything except the
model as a share of the model's time run the same way (target <= 25 %), in wall time (what a
frame costs the run; the look-ahead hides part of it behind the model) and in CPU time (the
work itself).

Network access is refused for the whole run (``socket.connect`` raises) and any attempt is
reported: ultralytics must not try to download weights or fonts.

    YOLO_OFFLINE=1 python benchmarks/pipeline_speed.py [--frames 120] [--rounds 3] [--json out]
        [--model models/crowd_density_int8.onnx]

On a shared machine pause other heavy jobs while it runs (they skew all variants, not the
ratios' direction).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from density_accuracy import cpu_model  # noqa: E402

from crowdwatch.config import EstimatorConfig, default_config, load_config  # noqa: E402
from crowdwatch.estimators.density import DensityEstimator, prepare_input  # noqa: E402
from crowdwatch.paths import sample_video  # noqa: E402
from crowdwatch.pipeline.camera import CameraAnalyzer, look_ahead_plan  # noqa: E402
from crowdwatch.pipeline.threads import limit_opencv_threads  # noqa: E402
from crowdwatch.types import Frame  # noqa: E402

SAMPLE_CONFIG = Path(__file__).resolve().parents[1] / "sample_videos" / "pets2009_s2l1.yaml"
#: OpenCV's own thread count, before crowdwatch limits it (what an ultralytics user runs with).
OPENCV_DEFAULT_THREADS = cv2.getNumThreads()
NETWORK_ATTEMPTS: list[str] = []


def refuse_network() -> None:
    """Make every outgoing connection fail, and remember where it was going."""

    def connect(self, address, *args, **kwargs):
        NETWORK_ATTEMPTS.append(str(address))
        raise OSError(f"network disabled by pipeline_speed.py (tried {address})")

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect  # type: ignore[method-assign]


def read_frames(count: int, fps: float = 7.0) -> list[Frame]:
    capture = cv2.VideoCapture(str(sample_video()))
    frames = []
    while len(frames) < count:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(Frame(image, len(frames), len(frames) / fps, "pets"))
    capture.release()
    return frames


class Crowdwatch:
    """``CameraAnalyzer`` over a run of frames, as ``analyze`` runs it (``process_stream``: the
    next frame estimated while this one is measured and drawn by ``annotate``) or, with
    ``live``, as the live engine does (``process`` frame by frame, nothing drawn: it draws a
    frame only for an alert's snapshot)."""

    def __init__(
        self, camera, estimator, fps: float = 7.0, *, live: bool = False, ahead: int = 1
    ) -> None:
        self.analyzer = CameraAnalyzer(camera, estimator)
        self.fps, self.count, self.live, self.ahead = fps, 0, live, ahead

    def __call__(self, frames: list[Frame]) -> None:
        if self.live:
            for frame in self._renumbered(frames):
                self.analyzer.process(frame)
            return
        for result in self.analyzer.process_stream(self._renumbered(frames), ahead=self.ahead):
            self.analyzer.annotate(result)

    def _renumbered(self, frames: list[Frame]):
        # Frames repeat when a run outlasts the clip: time must still move forward.
        for frame in frames:
            yield Frame(frame.image, self.count, self.count / self.fps, frame.source)
            self.count += 1


class ModelAlone:
    """The density model's onnxruntime run on an already prepared input."""

    def __init__(self, estimator: DensityEstimator, frames: list[Frame]) -> None:
        self.estimator = estimator
        self.inputs = {id(f): prepare_input(f.image, estimator.max_side) for f in frames}

    def __call__(self, frames: list[Frame]) -> None:
        session = self.estimator._session
        for frame in frames:
            session.run(None, {self.estimator._input: self.inputs[id(frame)]})


class ModelSideBySide(ModelAlone):
    """The density model's run on prepared inputs, ``calls`` at once on single-threaded
    sessions (each thread takes every ``calls``-th frame): the model's part of ``analyze``'s
    look-ahead of one frame per core."""

    def __init__(self, estimator: DensityEstimator, frames: list[Frame], calls: int) -> None:
        super().__init__(estimator, frames)
        self.pool = ThreadPoolExecutor(max_workers=calls)
        self.calls = calls

    def __call__(self, frames: list[Frame]) -> None:
        parts = [frames[k :: self.calls] for k in range(self.calls)]
        for done in [self.pool.submit(super(ModelSideBySide, self).__call__, p) for p in parts]:
            done.result()


class UltralyticsHeatmap:
    """ultralytics' ``solutions.Heatmap`` with yolo11n from its yaml (random weights)."""

    def __init__(self, threads: int) -> None:
        import torch
        from ultralytics import solutions

        torch.set_num_threads(threads)
        self.heatmap = solutions.Heatmap(
            model="yolo11n.yaml", colormap=cv2.COLORMAP_PARULA, show=False, verbose=False,
            classes=[0],
        )  # fmt: skip

    def __call__(self, frames: list[Frame]) -> None:
        limited = cv2.getNumThreads()
        cv2.setNumThreads(OPENCV_DEFAULT_THREADS)
        try:
            for frame in frames:
                self.heatmap(frame.image.copy())
        finally:
            cv2.setNumThreads(limited)


def time_variants(variants: dict, frames: list[Frame], rounds: int, chunk: int) -> dict:
    """Wall and CPU seconds per variant, the variants taking turns in chunks of frames."""
    totals = {name: {"wall": 0.0, "cpu": 0.0, "frames": 0, "rounds": []} for name in variants}
    for run in variants.values():  # warm-up: first frames, sessions, caches
        run(frames[:3])
    positions = dict.fromkeys(variants, 3)
    for _ in range(rounds):
        for name, run in variants.items():
            batch = [frames[(positions[name] + i) % len(frames)] for i in range(chunk)]
            positions[name] += chunk
            cpu, wall = time.process_time(), time.perf_counter()
            run(batch)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            totals[name]["wall"] += wall
            totals[name]["cpu"] += cpu
            totals[name]["frames"] += len(batch)
            totals[name]["rounds"].append(len(batch) / wall)
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120, help="distinct frames decoded")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=40, help="frames per variant per round")
    parser.add_argument("--threads", type=int, default=2, help="model threads (both libraries)")
    parser.add_argument("--config", type=Path, default=SAMPLE_CONFIG)
    parser.add_argument("--skip-ultralytics", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--model", type=Path, help="density model file (default: the one crowdwatch picks here)"
    )
    args = parser.parse_args()
    refuse_network()
    limit_opencv_threads()  # as analyze and the engine run (one OpenCV thread)
    import logging

    logging.getLogger("ultralytics").setLevel(logging.ERROR)  # "No tracks found" every frame
    frames = read_frames(args.frames)
    estimator = DensityEstimator(args.model, threads=args.threads)
    # analyze's own plan for the density model on this machine's cores (look_ahead_plan).
    plan_threads, ahead = look_ahead_plan(EstimatorConfig(kind="density"))
    single = DensityEstimator(args.model, threads=plan_threads)

    def calibrated_camera():
        return load_config(args.config).cameras[0]

    uncalibrated_camera = default_config(str(sample_video())).cameras[0]
    variants = {
        "calibrated": Crowdwatch(calibrated_camera(), single, ahead=ahead),
        "calibrated 1 ahead": Crowdwatch(calibrated_camera(), estimator),
        "calibrated live": Crowdwatch(calibrated_camera(), estimator, live=True),
        "uncalibrated": Crowdwatch(uncalibrated_camera, single, ahead=ahead),
        "model alone": ModelAlone(estimator, frames),
        "model side by side": ModelSideBySide(single, frames, calls=ahead),
    }
    if not args.skip_ultralytics:
        variants["ultralytics"] = UltralyticsHeatmap(args.threads)
    totals = time_variants(variants, frames, args.rounds, args.chunk)
    height, width = frames[0].image.shape[:2]
    print(f"# pipeline_speed {time.strftime('%Y-%m-%d %H:%M')}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs, {width}x{height} PETS frames, {args.threads} model threads "
          f"(analyze's look-ahead: {ahead} frames at once on {plan_threads}-thread sessions), "
          f"{args.rounds} rounds x {args.chunk} frames, load {os.getloadavg()[0]:.1f}, model "
          f"{estimator.model_path.name}, {cpu_model()}")  # fmt: skip
    print(f"{'variant':18s} {'frames/s':>9s} {'ms/frame':>9s} {'CPU ms/frame':>13s}  per round")
    results = {}
    for name, total in totals.items():
        fps = total["frames"] / total["wall"]
        results[name] = {
            "fps": round(fps, 2),
            "ms_per_frame": round(1000 / fps, 1),
            "cpu_ms_per_frame": round(1000 * total["cpu"] / total["frames"], 1),
            "fps_per_round": [round(v, 2) for v in total["rounds"]],
        }
        row = results[name]
        print(f"{name:18s} {fps:9.2f} {row['ms_per_frame']:9.1f} {row['cpu_ms_per_frame']:13.1f}  "
              f"{' '.join(f'{v:.1f}' for v in total['rounds'])}")  # fmt: skip
    summary = {}
    # Each pipeline against the model run the way it runs it.
    references = {
        "calibrated": "model side by side",
        "calibrated 1 ahead": "model alone",
        "calibrated live": "model alone",
        "uncalibrated": "model side by side",
    }
    for name, reference in references.items():
        model_ms = results[reference]["ms_per_frame"]
        model_cpu = results[reference]["cpu_ms_per_frame"]
        rest = results[name]["ms_per_frame"] - model_ms
        key = name.replace(" ", "_")
        summary[f"{key}_except_model_pct"] = round(100 * rest / model_ms, 1)
        rest_cpu = results[name]["cpu_ms_per_frame"] - model_cpu
        summary[f"{key}_except_model_cpu_pct"] = round(100 * rest_cpu / model_cpu, 1)
        print(
            f"{name}: everything except the model {rest:.1f} ms per frame = "
            f"{100 * rest / model_ms:.0f} % of the model's {model_ms:.1f} ms ({reference}; "
            f"target <= 25 %); CPU {rest_cpu:.1f} ms = {100 * rest_cpu / model_cpu:.0f} % of its "
            f"{model_cpu:.1f}"
        )
    if "ultralytics" in results:
        targets = (
            ("calibrated", 3.0),
            ("calibrated 1 ahead", 3.0),
            ("calibrated live", 3.0),
            ("uncalibrated", 5.0),
            ("model side by side", 5.0),
        )
        for name, target in targets:
            ratio = results[name]["fps"] / results["ultralytics"]["fps"]
            summary[f"{name.replace(' ', '_')}_vs_ultralytics"] = round(ratio, 2)
            print(f"{name} / ultralytics Heatmap: {ratio:.2f}x (target >= {target:g}x)")
    print(
        f"network connections attempted: {len(NETWORK_ATTEMPTS)}"
        + (f" ({', '.join(sorted(set(NETWORK_ATTEMPTS)))})" if NETWORK_ATTEMPTS else "")
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "model": estimator.model_path.name,
                    "cpu": cpu_model(),
                    "variants": results,
                    "summary": summary,
                    "network_attempts": NETWORK_ATTEMPTS,
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
