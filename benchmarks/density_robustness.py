"""How much a density model's count moves with image quality: JPEG re-encoding and blur.

A camera's stream is compressed and its optics soften it, and both change with bitrate, focus and
weather. For each validation set (ShanghaiTech B and A, Beijing-BRT) and each model given, this
prints MAE, bias (mean of predicted - true) and the bias on the set's 10 densest images, on the
images as they are and re-encoded or blurred:

- ``jpeg q`` — re-encoded as JPEG of quality q (OpenCV, 4:2:0);
- ``blur s`` — Gaussian blur of sigma s pixels;
- ``scale f`` — resized by f (area interpolation down, bilinear up), as a camera further away or
  closer would see the scene.

The spread of the bias across these variants is the count's sensitivity to image quality: for
crowd safety it should be small, whatever the MAE.

    python benchmarks/density_robustness.py [--model A.onnx --model B.onnx] [--limit 20]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from crowdwatch.estimators.density import DensityEstimator, default_model_path
from crowdwatch.evaluation.datasets import annotated_samples, data_root, select_split

SETS = (
    ("ShanghaiTech B val", "shanghaitech", "shanghaitech/part_B_train"),
    ("ShanghaiTech A val", "shanghaitech", "shanghaitech/part_A_train"),
    ("Beijing-BRT val", "brt", "beijing_brt/train"),
)


def jpeg(quality: int) -> Callable[[np.ndarray], np.ndarray]:
    """Re-encode an image as a JPEG of ``quality``."""

    def apply(image: np.ndarray) -> np.ndarray:
        _, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        return cv2.imdecode(encoded, cv2.IMREAD_COLOR)

    return apply


def blur(sigma: float) -> Callable[[np.ndarray], np.ndarray]:
    """Gaussian blur of ``sigma`` pixels."""
    return lambda image: cv2.GaussianBlur(image, (0, 0), sigma)


def scale(factor: float) -> Callable[[np.ndarray], np.ndarray]:
    """Resize by ``factor`` (area interpolation when shrinking, bilinear when enlarging)."""
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    return lambda image: cv2.resize(image, None, fx=factor, fy=factor, interpolation=interpolation)


VARIANTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "as is": lambda image: image,
    "jpeg 80": jpeg(80),
    "jpeg 60": jpeg(60),
    "jpeg 40": jpeg(40),
    "blur 0.6": blur(0.6),
    "blur 1.0": blur(1.0),
    "scale 0.8": scale(0.8),
    "scale 1.25": scale(1.25),
}


def errors(
    estimator: DensityEstimator, images: list[tuple[np.ndarray, int]]
) -> dict[str, np.ndarray]:
    """Per variant, predicted - true count of each image."""
    return {
        name: np.array([estimator.estimate(change(image)).count - truth for image, truth in images])
        for name, change in VARIANTS.items()
    }


def summary(errs: np.ndarray, truths: np.ndarray) -> dict[str, float]:
    """MAE, bias and the 10 densest images' bias of one variant's errors."""
    densest = np.argsort(-truths, kind="stable")[:10]
    return {
        "mae": float(np.abs(errs).mean()),
        "bias": float(errs.mean()),
        "densest10_bias": float(errs[densest].mean()),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, action="append", help="repeat for several models")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit", type=int, default=None, help="at most this many images per set")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    models = args.model or [default_model_path()]
    root = data_root()
    print(f"# density_robustness {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs")
    report: dict = {}
    for label, dataset, folder in SETS:
        if not (root / folder).is_dir():
            print(f"{label}: skipped, {root / folder} missing")
            continue
        pool = annotated_samples(dataset, root / folder)
        items = select_split(dataset, root / folder, pool, "val")
        images = [(item.load(), item.count) for item in items[: args.limit]]
        truths = np.array([truth for _, truth in images], float)
        for model in models:
            estimator = DensityEstimator(model, threads=args.threads)
            rows = {name: summary(e, truths) for name, e in errors(estimator, images).items()}
            report.setdefault(label, {})[str(model)] = rows
            biases = [row["bias"] for row in rows.values()]
            print(f"{label} ({len(images)} images, mean {truths.mean():.1f}), {model}: "
                  f"bias spread {max(biases) - min(biases):.2f}")  # fmt: skip
            for name, row in rows.items():
                print(f"  {name:9s} MAE {row['mae']:7.2f}  bias {row['bias']:+8.2f}  "
                      f"densest-10 bias {row['densest10_bias']:+8.2f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
