"""How cameras should share the density model on a few cores: frames/s of the model, one run.

On a PETS frame resized to ``--size`` (640x360 by default, a camera's substream), it times the
shipped density model three ways, side by side in one process:

- one call at a time on a session with every core (``threads = cores``): one camera's way;
- ``cores`` calls side by side, each on a single-threaded session (``SharedEstimator`` with
  ``model_threads_and_slots``): the live engine's way for several cameras;
- ``cores`` calls side by side on a session with every core (oversubscribed).

    python benchmarks/model_calls.py [--size 640x360] [--frames 48]

With ``--batches 1 2 4 8 16`` it times batched calls instead (``estimate_batch`` of that many
frames in one model call, as the engine's ``BatchingEstimator`` makes them), on ``--device``
(``cuda`` with the ``gpu`` extra on a GPU machine), and prints how many cameras at
``--camera-fps`` the model alone would serve:

    python benchmarks/model_calls.py --device cuda --size 1280x720 --batches 1 2 4 8 16
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import cv2

from crowdwatch.engine import SharedEstimator
from crowdwatch.estimators.density import DensityEstimator
from crowdwatch.paths import sample_video


def frames_per_second(estimator, image, *, frames: int, callers: int) -> float:
    """Frames/s of ``callers`` threads sharing ``frames`` estimates of ``image``."""
    estimator.estimate(image)  # warm-up

    def work(count: int) -> None:
        for _ in range(count):
            estimator.estimate(image)

    threads = [threading.Thread(target=work, args=(frames // callers,)) for _ in range(callers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return callers * (frames // callers) / (time.perf_counter() - started)


def batched_frames_per_second(estimator, images, *, batch: int, calls: int) -> float:
    """Frames/s of ``calls`` calls of ``estimate_batch`` on ``batch`` of ``images`` each."""
    chosen = [images[i % len(images)] for i in range(batch)]
    estimator.estimate_batch(chosen)  # warm-up (CUDA: kernels and memory for this shape)
    started = time.perf_counter()
    for _ in range(calls):
        estimator.estimate_batch(chosen)
    return calls * batch / (time.perf_counter() - started)


def run_batches(args, images: list) -> None:
    """The ``--batches`` table: frames/s per batch size on ``args.device``."""
    model = DensityEstimator(threads=len(os.sched_getaffinity(0)), device=args.device)
    print(f"model {model.model_path.name} on {args.device}")
    print(f"batch  frames/s  ms/call  cameras at {args.camera_fps:g} fps")
    for batch in args.batches:
        calls = max(3, args.frames // batch)
        fps = batched_frames_per_second(model, images, batch=batch, calls=calls)
        print(f"{batch:5d}  {fps:8.1f}  {1000 * batch / fps:7.1f}  {fps / args.camera_fps:8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--batches", type=int, nargs="+", help="time batched calls of these sizes")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--camera-fps", type=float, default=2.0)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    cores = len(os.sched_getaffinity(0))
    capture = cv2.VideoCapture(str(sample_video()))
    images = [
        cv2.resize(capture.read()[1], (width, height), interpolation=cv2.INTER_AREA)
        for _ in range(16)
    ]
    capture.release()
    image = images[0]
    print(f"# model_calls {time.strftime('%Y-%m-%d %H:%M')}, {cores} cores, {width}x{height}, "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    if args.batches:
        run_batches(args, images)
        return
    every_core = DensityEstimator(threads=cores)
    one_core = DensityEstimator(threads=1)
    variants = {
        f"1 call at a time, {cores} threads": (SharedEstimator(every_core, slots=1), 1),
        f"{cores} calls side by side, 1 thread each": (
            SharedEstimator(one_core, slots=cores), cores,
        ),
        f"{cores} calls side by side, {cores} threads each": (
            SharedEstimator(every_core, slots=cores), cores,
        ),
    }  # fmt: skip
    for name, (shared, callers) in variants.items():
        fps = frames_per_second(shared, image, frames=args.frames, callers=callers)
        print(f"{name:38s} {fps:6.1f} frames/s")


if __name__ == "__main__":
    main()
