"""How well the density model fits its own training images, beside the validation split.

For each training source (ShanghaiTech B, A, Beijing-BRT) it counts every training image and
every validation image with the shipped ONNX model (or ``--model``) as crowdwatch runs it
(native resolution, ``DensityEstimator``), and prints MAE, bias and the bias on the 10 densest
images of each. A set whose training images are missed as badly as its validation images is
underfitted (capacity or training, not generalisation); a set whose validation error alone is
large does not generalise.

With ``--cell-calibration`` it also fits, on the training images only, a count correction of
the stride-8 cells: each cell's people multiplied by a piecewise-linear function of its own
density (knots at 0.003 – 1 person a cell, log-spaced), chosen to minimise the mean over the
three sets of MAE / issue #15's target (8.5 / 60 / 1.3), with a small pull towards 1; and it
reports that corrected model on the validation split and PETS (every 3rd frame). The density
map would still sum to the count. (Tried 2026-12-03 for issue #15 and not shipped: see the
model card.)

    python benchmarks/density_fit.py [--model PATH.onnx] [--cell-calibration]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from crowdwatch.estimators.density import DensityEstimator
from crowdwatch.evaluation.datasets import annotated_samples, data_root, pets_frames, select_split
from crowdwatch.training.data import TRAIN_SOURCES

SHORT = {"shanghaitech/part_B_train": "SHB", "shanghaitech/part_A_train": "SHA",
         "beijing_brt/train": "BRT", "pets": "PETS"}  # fmt: skip
TARGETS = {"SHB": 8.5, "SHA": 60.0, "BRT": 1.3}
KNOTS = np.array([0.003, 0.01, 0.03, 0.06, 0.12, 0.25, 0.5, 1.0])
#: Bins of log cell density: each image is summarised by its people per bin.
EDGES = np.linspace(np.log(1e-4), np.log(4.0), 60)
CENTRES = 0.5 * (EDGES[1:] + EDGES[:-1])
DENSEST = 10


def people_per_bin(cells: np.ndarray) -> np.ndarray:
    """The people of an image's stride-8 cells, summed by bins of the cells' own density."""
    levels = np.log(np.maximum(cells, 1e-6)).ravel()
    bins = np.clip(np.digitize(levels, EDGES) - 1, 0, len(CENTRES) - 1)
    return np.bincount(bins, weights=cells.ravel().astype(np.float64), minlength=len(CENTRES))


def collect(estimator: DensityEstimator, root: Path) -> dict[tuple[str, str], tuple]:
    """(set, split) -> (people per bin per image, true counts)."""
    collected = {}
    for dataset, folder in TRAIN_SOURCES:
        samples = annotated_samples(dataset, root / folder)
        for split in ("train", "val"):
            items = select_split(dataset, root / folder, samples, split)
            bins = [people_per_bin(estimator.cell_density(item.load())) for item in items]
            collected[(SHORT[folder], split)] = (np.array(bins), np.array([i.count for i in items]))
    pets = root / "pets2009_vtest"
    if (pets / "vtest.avi").is_file():
        frames = [(frame, truth) for k, (_, frame, truth) in enumerate(pets_frames(pets))
                  if k % 3 == 0]  # fmt: skip
        bins = [people_per_bin(estimator.cell_density(frame)) for frame, _ in frames]
        collected[("PETS", "val")] = (np.array(bins), np.array([t for _, t in frames], float))
    return collected


def errors(bins: np.ndarray, truth: np.ndarray, multipliers: np.ndarray) -> tuple[float, ...]:
    """(MAE, bias, bias on the densest images) of the counts corrected by ``multipliers``."""
    factor = np.interp(CENTRES, np.log(KNOTS), multipliers)
    error = bins @ factor - truth
    densest = np.argsort(-truth, kind="stable")[:DENSEST]
    return float(np.abs(error).mean()), float(error.mean()), float(error[densest].mean())


def report(collected: dict, multipliers: np.ndarray, label: str) -> None:
    for (name, split), (bins, truth) in collected.items():
        mae, bias, dense = errors(bins, truth, multipliers)
        print(f"{label:12s} {name:4s} {split:5s} {len(truth):4d} images  MAE {mae:7.2f}  "
              f"bias {bias:+7.2f}  densest-{DENSEST} bias {dense:+8.2f}")  # fmt: skip


def fit_cell_calibration(collected: dict, pull: float = 0.05) -> np.ndarray:
    """The knots' multipliers minimising the training images' score (see the module doc)."""
    from scipy.optimize import minimize

    def objective(multipliers: np.ndarray) -> float:
        score = np.mean([errors(*collected[(name, "train")], multipliers)[0] / target
                         for name, target in TARGETS.items()])  # fmt: skip
        return float(score + pull * np.sum((multipliers - 1.0) ** 2))

    start = np.ones(len(KNOTS))
    return minimize(objective, start, method="Powell", options={"xtol": 1e-3}).x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="ONNX model (default: the shipped int8 one)")
    parser.add_argument("--cell-calibration", action="store_true")
    args = parser.parse_args()
    estimator = DensityEstimator(model_path=args.model)
    print(f"# density_fit {time.strftime('%Y-%m-%d %H:%M')}, {estimator.model_path.name}")
    collected = collect(estimator, data_root())
    identity = np.ones(len(KNOTS))
    report(collected, identity, "as shipped")
    if args.cell_calibration:
        multipliers = fit_cell_calibration(collected)
        print("cell multipliers at " + ", ".join(
            f"{k:g}: {m:.3f}" for k, m in zip(KNOTS, multipliers, strict=True)))  # fmt: skip
        report(collected, multipliers, "calibrated")


if __name__ == "__main__":
    main()
