"""Count calibration by the crowd's scale: fit a trained network's spacing gains.

A network with the spacing head (``--deep-stage --spacing-weight``) knows how far apart the heads
are in every region (its prediction correlates with the truth at 0.89 - 0.99 per image, issue
#15), yet its counting error follows that scale: it undercounts ShanghaiTech B's dense street
scenes and overcounts A's far stadium crowds. :class:`~crowdwatch.training.model.SpacingGain`
multiplies each cell's density by a gain read from its predicted spacing; this module fits the
gains on the training split alone and writes a checkpoint that carries them (``export.py``
exports it like any other).

The calibrated count is linear in the gains: ``count = sum_k gains[k] * F_k`` with
``F_k = sum_cells density * hat_k(log spacing)`` (people), so the fit is a ridge regression,
weighted like a Poisson count (each image by 1 / (n + 10)), pulled towards gains of 1::

    minimise  sum_i (F_i . g - n_i)^2 / (n_i + 10)  +  ridge * |g - 1|^2

    python -m crowdwatch.training.recalibrate CHECKPOINT OUT.pt [--ridge 1000 ...]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from crowdwatch.estimators.density import prepare_input
from crowdwatch.evaluation.datasets import annotated_samples, data_root, select_split
from crowdwatch.training.data import TRAIN_SOURCES
from crowdwatch.training.model import (
    SPACING_GAIN_LAYER,
    DensityNet,
    SpacingGain,
    checkpoint_weights,
    mean_density,
    network_for_state,
)
from crowdwatch.training.train import count_error_metrics

#: Added to each image's count in its weight 1 / (n + POISSON_FLOOR): empty images keep a weight.
POISSON_FLOOR = 10.0


@dataclass(frozen=True)
class GainFeatures:
    """Per image: the set it comes from, its true count and its features F (K,), people."""

    source: str
    count: float
    features: np.ndarray


@torch.no_grad()
def gain_features(
    net: DensityNet, gain: SpacingGain, image_bgr: np.ndarray, *, max_side: int
) -> np.ndarray:
    """F_k = sum over cells of density x hat_k(log spacing) (K,), people: the image's count
    split by the knots of the crowd's scale; ``F . gains`` is the calibrated count."""
    x = torch.from_numpy(prepare_input(image_bgr, max_side))
    rate, zero_probability, log_spacing = net.parts_and_spacing(x)
    if log_spacing is None:
        raise ValueError("the network has no spacing head: train it with --spacing-weight")
    density = mean_density(rate, zero_probability)
    weights = gain.hat_weights(gain.cell_log_spacing(density, log_spacing))
    return (weights * density).sum(dim=(0, 2, 3)).double().numpy()


def fit_gains(features: np.ndarray, counts: np.ndarray, *, ridge: float) -> np.ndarray:
    """Gains (K,) minimising sum_i (F_i . g - n_i)^2 / (n_i + 10) + ridge |g - 1|^2."""
    weight = 1.0 / np.sqrt(counts + POISSON_FLOOR)
    a = features * weight[:, None]
    b = counts * weight
    k = features.shape[1]
    return np.linalg.solve(a.T @ a + ridge * np.eye(k), a.T @ b + ridge * np.ones(k))


def set_metrics(rows: list[GainFeatures], gains: np.ndarray) -> dict[str, dict[str, float]]:
    """The trainer's validation metrics per source (:func:`count_error_metrics`, people) of the
    counts ``F . gains``."""
    out = {}
    for source in sorted({r.source for r in rows}):
        mine = [r for r in rows if r.source == source]
        counts = np.array([r.count for r in mine])
        errors = np.array([r.features @ gains for r in mine]) - counts
        out[source] = count_error_metrics(errors, counts)
    return out


def collect(
    net: DensityNet, gain: SpacingGain, root: Path, split: str, *, max_side: int
) -> list[GainFeatures]:
    """:func:`gain_features` of every image of ``split`` ("train" or "val") of each source."""
    rows = []
    for dataset, folder in TRAIN_SOURCES:
        items = select_split(
            dataset, root / folder, annotated_samples(dataset, root / folder), split
        )
        for item in items:
            features = gain_features(net, gain, item.load(), max_side=max_side)
            rows.append(GainFeatures(folder, float(item.count), features))
    return rows


def _print_metrics(label: str, metrics: dict[str, dict[str, float]]) -> None:
    cells = [
        f"{source.split('/')[-1]} MAE {m['mae']:.2f} bias {m['bias']:+.1f} "
        f"densest {m['dense_bias']:+.1f}"
        for source, m in metrics.items()
    ]
    print(f"{label:>14s}: " + " | ".join(cells))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("out", type=Path, help="checkpoint with the fitted gains")
    parser.add_argument("--ridge", type=float, nargs="+", default=[1000.0],
                        help="ridge strengths to fit; the first is written to OUT")  # fmt: skip
    parser.add_argument("--max-side", type=int, default=1280)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    state = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    weights = {
        k: v for k, v in checkpoint_weights(state).items() if not k.startswith(SPACING_GAIN_LAYER)
    }
    net = network_for_state(weights)
    net.load_state_dict(weights)
    net.eval()
    gain = SpacingGain()
    root = data_root()
    train = collect(net, gain, root, "train", max_side=args.max_side)
    val = collect(net, gain, root, "val", max_side=args.max_side)
    features = np.stack([r.features for r in train])
    counts = np.array([r.count for r in train])
    _print_metrics("val, no gain", set_metrics(val, np.ones(features.shape[1])))
    fitted = {}
    for ridge in args.ridge:
        fitted[ridge] = fit_gains(features, counts, ridge=ridge)
        print(f"ridge {ridge:g}: gains {np.round(fitted[ridge], 3).tolist()}")
        _print_metrics(f"val, ridge {ridge:g}", set_metrics(val, fitted[ridge]))
        _print_metrics("train", set_metrics(train, fitted[ridge]))
    chosen = fitted[args.ridge[0]]
    out_weights = dict(weights)
    out_weights[f"{SPACING_GAIN_LAYER}.log_knots"] = gain.log_knots.clone()
    out_weights[f"{SPACING_GAIN_LAYER}.gains"] = torch.tensor(chosen, dtype=torch.float32)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": out_weights, "step": state.get("step"), "recalibration": {
        "ridge": args.ridge[0], "gains": chosen.tolist(),
        "train_images": len(train)}}, args.out)  # fmt: skip
    print(json.dumps({"out": str(args.out), "ridge": args.ridge[0], "gains": chosen.tolist()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
