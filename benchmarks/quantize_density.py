"""An int8 variant of the density model: onnxruntime static quantisation, and what it costs.

Calibrates on training images only (the committed validation split stays held out), writes the
quantised model, then measures the float and int8 models side by side in one run: validation MAE
on ShanghaiTech B / A, Beijing-BRT and the PETS clip, and milliseconds per 1024x768 image.
The int8 model is worth shipping only if every validation MAE moves by less than 2 %.

Run::

    python benchmarks/quantize_density.py [--out /tmp/crowd_density_int8.onnx] [--calibration 48]

Data comes from ``$CROWDWATCH_DATA`` (default ``../shared/data``).
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from density_accuracy import SPEED_SIZE, VAL_SETS, time_per_image
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from crowdwatch.estimators.density import DensityEstimator, default_model_path, prepare_input
from crowdwatch.evaluation.datasets import data_root, iter_dataset
from crowdwatch.evaluation.evaluate import evaluate

TRAIN_SETS = (
    ("shanghaitech", "shanghaitech/part_B_train"),
    ("shanghaitech", "shanghaitech/part_A_train"),
    ("brt", "beijing_brt/train"),
)


class TrainingImages(CalibrationDataReader):
    """Network inputs of training images, taken in turn from each set (never validation)."""

    def __init__(self, input_name: str, count: int) -> None:
        self.input_name = input_name
        streams = [
            iter_dataset(dataset, data_root() / folder, split="train")
            for dataset, folder in TRAIN_SETS
        ]
        mixed = (item for group in itertools.zip_longest(*streams) for item in group if item)
        self._images: Iterator = itertools.islice(mixed, count)

    def get_next(self) -> dict[str, np.ndarray] | None:
        item = next(self._images, None)
        if item is None:
            return None
        _, image, _ = item
        return {self.input_name: prepare_input(image, max_side=1280)}


# The 1x1 convolution that makes the density: kept in float, its output is the count.
KEEP_FLOAT = ("/head/head.8/Conv",)


def quantise(
    source: Path, target: Path, calibration_images: int, keep_float: tuple[str, ...] = KEEP_FLOAT
) -> None:
    """Static QDQ quantisation: int8 weights per channel, uint8 activations, min-max ranges;
    the nodes in ``keep_float`` stay float."""
    prepared = target.with_suffix(".prepared.onnx")
    quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
    estimator = DensityEstimator(model_path=source)
    reader = TrainingImages(estimator._session.get_inputs()[0].name, calibration_images)
    quantize_static(
        str(prepared),
        str(target),
        reader,
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        nodes_to_exclude=list(keep_float),
    )
    prepared.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/crowd_density_int8.onnx"))
    parser.add_argument("--calibration", type=int, default=48, help="training images")
    parser.add_argument(
        "--keep-float", nargs="*", default=list(KEEP_FLOAT), help="node names left in float"
    )
    args = parser.parse_args()
    source = default_model_path()
    quantise(source, args.out, args.calibration, tuple(args.keep_float))
    print(f"int8 model: {args.out} ({args.out.stat().st_size / 1e6:.2f} MB; "
          f"float {source.stat().st_size / 1e6:.2f} MB)")  # fmt: skip
    models = {"float": DensityEstimator(model_path=source), "int8": DensityEstimator(args.out)}
    image = cv2.resize(cv2.imread(str(next((data_root() / TRAIN_SETS[0][1]).rglob("*.jpg")))),
                       SPEED_SIZE)  # fmt: skip
    speeds = {name: time_per_image(model, image) for name, model in models.items()}
    print(f"{SPEED_SIZE[0]}x{SPEED_SIZE[1]} ms/image: float {speeds['float']:.1f}, "
          f"int8 {speeds['int8']:.1f} ({speeds['float'] / speeds['int8']:.2f}x)")  # fmt: skip
    for label, dataset, folder, split in VAL_SETS:
        results = {
            name: evaluate(dataset, data_root() / folder, model, split=split)
            for name, model in models.items()
        }
        change = results["int8"].mae / results["float"].mae - 1
        print(f"{label:22} MAE float {results['float'].mae:7.3f}  int8 {results['int8'].mae:7.3f}"
              f"  change {change:+.1%}")  # fmt: skip


if __name__ == "__main__":
    main()
