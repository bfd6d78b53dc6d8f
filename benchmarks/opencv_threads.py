"""Frames per second of the camera pipeline with OpenCV on one thread against OpenCV's default.

Why ``crowdwatch/pipeline/threads.py`` holds OpenCV to one thread: on the same decoded PETS
frames, in one process, the calibrated sample config and the uncalibrated default config run
``CameraAnalyzer.process_stream`` + ``annotate`` (as ``analyze`` writing its video) with OpenCV's
thread count set before each turn, the variants taking turns in rounds of ``--chunk`` frames so
the machine's other load touches them alike. The density model runs on 2 onnxruntime threads
throughout. Prints frames/s and CPU ms per frame per variant and the one-thread / default ratio.

    python benchmarks/opencv_threads.py [--rounds 5] [--chunk 40]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import cv2
from pipeline_speed import SAMPLE_CONFIG, Crowdwatch, read_frames, time_variants

from crowdwatch.config import default_config, load_config
from crowdwatch.estimators.density import DensityEstimator
from crowdwatch.paths import sample_video
from crowdwatch.pipeline.threads import OPENCV_THREADS

#: OpenCV's own thread count, read before anything changes it.
OPENCV_DEFAULT_THREADS = cv2.getNumThreads()


class WithOpenCVThreads:
    """A variant that runs with OpenCV's thread count set to ``threads`` for its turn."""

    def __init__(self, threads: int, run: Crowdwatch) -> None:
        self.threads, self.run = threads, run

    def __call__(self, frames) -> None:
        cv2.setNumThreads(self.threads)
        self.run(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120, help="distinct frames decoded")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=40)
    args = parser.parse_args()
    frames = read_frames(args.frames)
    estimator = DensityEstimator(threads=2)
    cameras = {
        "calibrated": load_config(SAMPLE_CONFIG).cameras[0],
        "uncalibrated": default_config(str(sample_video())).cameras[0],
    }
    counts = {"one": OPENCV_THREADS, "default": OPENCV_DEFAULT_THREADS}
    variants = {
        (camera, label): WithOpenCVThreads(threads, Crowdwatch(config, estimator))
        for camera, config in cameras.items()
        for label, threads in counts.items()
    }
    totals = time_variants(variants, frames, args.rounds, args.chunk)
    print(f"# opencv_threads {time.strftime('%Y-%m-%d %H:%M')}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs, OpenCV default {OPENCV_DEFAULT_THREADS} threads, "
          f"{args.rounds} rounds x {args.chunk} frames, load {os.getloadavg()[0]:.1f}")  # fmt: skip
    fps = {}
    for (camera, label), total in totals.items():
        fps[camera, label] = total["frames"] / total["wall"]
        cpu_ms = 1000 * total["cpu"] / total["frames"]
        print(f"{camera:12s} OpenCV {label:7s} ({counts[label]} threads) "
              f"{fps[camera, label]:6.2f} frames/s  CPU {cpu_ms:5.1f} ms/frame  "
              f"{' '.join(f'{v:.1f}' for v in total['rounds'])}")  # fmt: skip
    for camera in cameras:
        print(f"{camera}: one thread / default = {fps[camera, 'one'] / fps[camera, 'default']:.3f}")


if __name__ == "__main__":
    main()
