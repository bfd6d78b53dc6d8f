"""The int8 density model against the float one it is quantised from, side by side in one run.

Measures both models on the committed validation split (ShanghaiTech B / A, Beijing-BRT) and the
PETS clip, and their milliseconds per 1024x768 image, and prints each MAE's change. The int8 model
ships as the default only if no validation MAE gets worse by 2 % or more
(``crowdwatch.training.quantize`` makes it; ``--requantize`` makes it afresh first).

Run::

    python benchmarks/quantize_density.py [--int8 models/crowd_density_int8.onnx] [--requantize]

Data comes from ``$CROWDWATCH_DATA`` (default ``../shared/data``).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
from density_accuracy import VAL_SETS, speed_image, time_per_image

from crowdwatch.estimators.density import DensityEstimator, default_model_path, float_model_path
from crowdwatch.evaluation.datasets import data_root
from crowdwatch.evaluation.evaluate import evaluate
from crowdwatch.training.quantize import quantize_density

#: The largest worsening of any validation MAE the int8 model may bring and still ship.
MAX_WORSENING = 0.02


def per_image_difference(reference: list[float], other: list[float]) -> float:
    """Mean over images of |other - reference| / reference (the reference at least 1 person):
    how faithfully int8 follows float image by image, whatever either's error against the
    truth."""
    base = np.maximum(np.asarray(reference), 1.0)
    return float(np.mean(np.abs(np.asarray(other) - np.asarray(reference)) / base))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--float", dest="float_model", type=Path, default=float_model_path())
    parser.add_argument("--int8", type=Path, default=default_model_path())
    parser.add_argument("--requantize", action="store_true", help="write --int8 from --float first")
    parser.add_argument("--rounds", type=int, default=2, help="speed measurements per model")
    args = parser.parse_args()
    if args.requantize:
        quantize_density(args.float_model, args.int8)
    print(f"# quantize_density {time.strftime('%Y-%m-%d %H:%M')}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs; float {args.float_model.stat().st_size / 1e6:.2f} MB, "
          f"int8 {args.int8.stat().st_size / 1e6:.2f} MB")  # fmt: skip
    models = {"float": DensityEstimator(args.float_model), "int8": DensityEstimator(args.int8)}
    image = speed_image(data_root())
    for _ in range(args.rounds):  # alternating, so that the machine's load touches both alike
        speeds = {name: time_per_image(model, image) for name, model in models.items()}
        print(f"1024x768 ms/image: float {speeds['float']:.1f}, int8 {speeds['int8']:.1f} "
              f"({speeds['float'] / speeds['int8']:.2f}x)")  # fmt: skip
    worst = 0.0
    for label, dataset, folder, split in VAL_SETS:
        counts: dict[str, list[float]] = {name: [] for name in models}
        results = {}
        for name, model in models.items():
            results[name] = evaluate(
                dataset,
                data_root() / folder,
                model,
                split=split,
                progress=lambda _n, predicted, _t, kept=counts[name]: kept.append(predicted),
            )
        agreement = per_image_difference(counts["float"], counts["int8"])
        change = results["int8"].mae / results["float"].mae - 1
        worst = max(worst, change)
        print(f"{label:22} MAE float {results['float'].mae:7.3f}  int8 {results['int8'].mae:7.3f}"
              f"  change {change:+.1%}   mean count float {results['float'].mean_pred:7.2f}  "
              f"int8 {results['int8'].mean_pred:7.2f}  truth {results['int8'].mean_gt:7.2f}  "
              f"per image |int8 - float| {agreement:.2%} of float",
              flush=True)  # fmt: skip
    verdict = "ships" if worst < MAX_WORSENING else "does not ship"
    print(f"largest worsening {worst:+.1%} (limit +{MAX_WORSENING:.0%}): the int8 model {verdict}")


if __name__ == "__main__":
    main()
