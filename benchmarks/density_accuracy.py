"""Validation accuracy and speed of the shipped density model (the README and model card numbers).

Prints, for the committed validation split (``crowdwatch/training/val_split.json``), MAE and MSE
(root-mean-square count error) on ShanghaiTech B, ShanghaiTech A and Beijing-BRT, the MAE over the
whole PETS 2009 clip against its per-frame counts, and milliseconds per 1024x768 image with
onnxruntime on 2 threads. ``--ssd`` adds the SSD person detector for comparison,
``--sparse-gate`` the density model gated by it in near-empty scenes
(``crowdwatch/estimators/sparse_gate.py``, row ``gated``, with the share of images it gated).

Run::

    python benchmarks/density_accuracy.py [--model PATH.onnx] [--ssd] [--sparse-gate]
        [--json out.json]

Data comes from ``$CROWDWATCH_DATA`` (default ``../shared/data``).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from crowdwatch.estimators.density import DensityEstimator, default_model_path
from crowdwatch.evaluation.datasets import data_root
from crowdwatch.evaluation.evaluate import EvalResult, evaluate

VAL_SETS = (
    ("ShanghaiTech B val", "shanghaitech", "shanghaitech/part_B_train", "val"),
    ("ShanghaiTech A val", "shanghaitech", "shanghaitech/part_A_train", "val"),
    ("Beijing-BRT val", "brt", "beijing_brt/train", "val"),
    ("PETS 2009 whole clip", "pets", "pets2009_vtest", "all"),
)
SPEED_SIZE = (1024, 768)


def cpu_model() -> str:
    """The CPU's model name and whether it has VNNI (int8 speed depends on it), for the header
    a benchmark prints: from /proc/cpuinfo, else ``platform.processor()``."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        return platform.processor() or platform.machine()
    text = cpuinfo.read_text(errors="replace")
    name = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                 if line.startswith("model name")), platform.machine())  # fmt: skip
    vnni = "avx512_vnni" in text or "avx_vnni" in text
    return f"{name} ({'with' if vnni else 'without'} VNNI)"


def time_per_image(estimator, image: np.ndarray, repeats: int = 20) -> float:
    """Median milliseconds of ``estimator.estimate`` on ``image`` after two warm-up runs."""
    for _ in range(2):
        estimator.estimate(image)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        estimator.estimate(image)
        times.append(1000.0 * (time.perf_counter() - start))
    return statistics.median(times)


def speed_image(root: Path) -> np.ndarray:
    """A real 1024x768 street frame (ShanghaiTech B), or mid-grey noise when the data is absent."""
    path = root / "shanghaitech/part_B_train/images/IMG_1.jpg"
    image = cv2.imread(str(path))
    if image is None:
        image = np.random.default_rng(0).integers(0, 255, (768, 1024, 3), dtype=np.uint8)
    return cv2.resize(image, SPEED_SIZE)


def _gated_share(estimator) -> str:
    """For the sparse gate: the share of images it gated since the last call, else ''."""
    if not hasattr(estimator, "gated"):
        return ""
    share = estimator.gated / max(1, estimator.estimated)
    estimator.gated = estimator.estimated = 0
    return f"  gated {100 * share:.0f} %"


def run(estimators: dict, root: Path, limit: int | None, accuracy: bool = True) -> dict:
    report: dict = {}
    for label, dataset, folder, split in VAL_SETS if accuracy else ():
        for name, estimator in estimators.items():
            if not (root / folder).exists():
                print(f"{label:24s} {name:8s} skipped: {root / folder} missing")
                continue
            result: EvalResult = evaluate(
                dataset, root / folder, estimator, split=split, limit=limit
            )
            report.setdefault(label, {})[name] = result.as_dict()
            gated = _gated_share(estimator)
            print(
                f"{label:24s} {name:8s} n={result.images:4d}  MAE {result.mae:7.2f}  "
                f"MSE {result.mse:7.2f}  gt {result.mean_gt:7.1f}  pred {result.mean_pred:7.1f}  "
                f"{result.ms_per_image:5.0f} ms/img{gated}",
                flush=True,
            )
    image = speed_image(root)
    for name, estimator in estimators.items():
        ms = time_per_image(estimator, image)
        report.setdefault("ms_per_1024x768", {})[name] = ms
        print(f"{'1024x768 speed':24s} {name:8s} {ms:.1f} ms (median of 20)")
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, default=default_model_path())
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--ssd", action="store_true", help="also evaluate the SSD person detector")
    p.add_argument(
        "--sparse-gate",
        action="store_true",
        help="also evaluate the density model gated by SSD in near-empty scenes (row 'gated')",
    )
    p.add_argument("--limit", type=int, default=None, help="at most this many images per set")
    p.add_argument("--json", type=Path, default=None, help="write the numbers to this file")
    p.add_argument("--speed-only", action="store_true", help="skip the accuracy sets")
    args = p.parse_args(argv)
    estimators: dict = {"density": DensityEstimator(args.model, threads=args.threads)}
    if args.ssd:
        from crowdwatch.estimators.ssd import SsdPersonDetector

        estimators["ssd"] = SsdPersonDetector()
    if args.sparse_gate:
        from crowdwatch.estimators.sparse_gate import SparseSceneGate
        from crowdwatch.estimators.ssd import SsdPersonDetector

        density = DensityEstimator(args.model, threads=args.threads)
        estimators["gated"] = SparseSceneGate(density, SsdPersonDetector)
    report = run(estimators, data_root(), args.limit, accuracy=not args.speed_only)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
