"""Counting accuracy of an estimator on an annotated dataset: MAE, MSE and speed.

``mse`` is the root of the mean squared count error, as the crowd-counting papers report "MSE".

Example:
    >>> from crowdwatch.estimators.density import DensityEstimator
    >>> result = evaluate("shanghaitech", data_root() / "shanghaitech/part_B_train",
    ...                   DensityEstimator(), split="val")          # doctest: +SKIP
    >>> print(result.summary())                                      # doctest: +SKIP
    shanghaitech: 50 images  MAE 14.20  MSE 21.37  mean gt 123.9  mean pred 120.1  61 ms/image
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from crowdwatch.estimators.base import Estimator
from crowdwatch.evaluation.datasets import DatasetError, data_root, iter_dataset

__all__ = ["EvalResult", "data_root", "evaluate", "errors_summary"]


@dataclass(frozen=True)
class EvalResult:
    """Count errors of one estimator on one dataset folder."""

    dataset: str
    images: int
    mae: float
    mse: float
    ms_per_image: float
    mean_gt: float
    mean_pred: float

    def summary(self) -> str:
        """One printable line."""
        return (
            f"{self.dataset}: {self.images} images  MAE {self.mae:.2f}  MSE {self.mse:.2f}  "
            f"mean gt {self.mean_gt:.1f}  mean pred {self.mean_pred:.1f}  "
            f"{self.ms_per_image:.0f} ms/image"
        )

    def as_dict(self) -> dict:
        return asdict(self)


def errors_summary(
    dataset: str, predictions: list[float], truths: list[float], seconds: float
) -> EvalResult:
    """An :class:`EvalResult` from paired predicted and true counts and the time they took."""
    if not predictions:
        raise DatasetError(f"no images were evaluated for {dataset!r}")
    pred = np.asarray(predictions, np.float64)
    gt = np.asarray(truths, np.float64)
    errors = pred - gt
    return EvalResult(
        dataset=dataset,
        images=len(pred),
        mae=float(np.abs(errors).mean()),
        mse=float(np.sqrt((errors**2).mean())),
        ms_per_image=1000.0 * seconds / len(pred),
        mean_gt=float(gt.mean()),
        mean_pred=float(pred.mean()),
    )


def evaluate(
    dataset: str,
    path: Path,
    estimator: Estimator,
    *,
    split: str = "all",
    limit: int | None = None,
    progress: Callable[[str, float, float], None] | None = None,
) -> EvalResult:
    """Run ``estimator`` on every image of a dataset folder and compare counts with the truth.

    Args:
        dataset: "shanghaitech" (a part folder), "brt" (a Beijing-BRT split folder) or "pets"
            (the folder holding ``vtest.avi`` and ``vtest_counts.csv``).
        path: the folder.
        estimator: any :class:`~crowdwatch.estimators.base.Estimator`.
        split: "all", "val" (the committed validation split) or "train" (the rest).
        limit: evaluate at most this many images.
        progress: called with (name, predicted, true) after each image.

    Only the estimator's time is counted in ``ms_per_image``, not image decoding.
    """
    predictions: list[float] = []
    truths: list[float] = []
    seconds = 0.0
    for name, image, truth in iter_dataset(dataset, Path(path), split=split, limit=limit):
        start = time.perf_counter()
        count = estimator.estimate(image).count
        seconds += time.perf_counter() - start
        predictions.append(count)
        truths.append(truth)
        if progress is not None:
            progress(name, count, truth)
    return errors_summary(dataset, predictions, truths, seconds)
