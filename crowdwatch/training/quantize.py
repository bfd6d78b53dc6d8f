"""The int8 density model: onnxruntime static quantisation of the float export.

Usage::

    python -m crowdwatch.training.quantize models/crowd_density.onnx models/crowd_density_int8.onnx

Weights become int8 per output channel and activations uint8 (QDQ format), each activation's
range the 0.001 – 99.999 percentiles of its values over :data:`CALIBRATION_IMAGES` training
images (never the validation split) resized to 1024x768. Percentile ranges, unlike min-max ones,
ignore the few extreme activations of dense scenes that would otherwise stretch every range and
cost its resolution: min-max calibration moved ShanghaiTech A's validation MAE by +7 %, these
ranges by +1.0 % (``benchmarks/quantize_density.py`` measures it). The 1x1 convolution that makes
the density stays in float: its output is the count.

Histogram calibration keeps every calibration image's activations in memory, about 1 GB per
1024x768 image: 16 images need about 16 GB.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from crowdwatch.estimators.density import prepare_input
from crowdwatch.evaluation.datasets import data_root, iter_dataset

#: (dataset kind, folder under the data root) of the training images calibration reads, in turn.
TRAIN_SETS = (
    ("shanghaitech", "shanghaitech/part_B_train"),
    ("shanghaitech", "shanghaitech/part_A_train"),
    ("brt", "beijing_brt/train"),
)
CALIBRATION_IMAGES = 16
#: Calibration images are resized to this (width, height): histogram calibration needs one shape.
CALIBRATION_SIZE = (1024, 768)
PERCENTILE = 99.999
#: The 1x1 convolution that makes the density: kept in float, its output is the count.
KEEP_FLOAT = ("/head/head.8/Conv",)


class TrainingImages(CalibrationDataReader):
    """Network inputs of training images taken in turn from each of :data:`TRAIN_SETS`'s
    training splits (never validation), resized to ``size``."""

    def __init__(self, input_name: str, *, count: int, size: tuple[int, int]) -> None:
        self.input_name = input_name
        self.size = size
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
        image = cv2.resize(item[1], self.size)
        return {self.input_name: prepare_input(image, max_side=max(self.size))}


def quantize_density(
    source: Path,
    target: Path,
    *,
    calibration_images: int = CALIBRATION_IMAGES,
    percentile: float = PERCENTILE,
    keep_float: tuple[str, ...] = KEEP_FLOAT,
    weight_type: QuantType = QuantType.QInt8,
    reduce_range: bool = False,
    seven_bit_dense: bool = False,
) -> Path:
    """Write the int8 (QDQ) variant of the float model ``source`` to ``target``.

    The defaults make the shipped file. The others are the variants tried for CPUs without VNNI
    (``benchmarks/int8_variants.py``): ``weight_type=QuantType.QUInt8`` (u8 x u8, exact there),
    ``reduce_range`` (7-bit weights everywhere: pairs of products cannot saturate 16 bits) and
    ``seven_bit_dense`` (7-bit weights in the non-depthwise convolutions only).
    """
    prepared = target.with_suffix(".prepared.onnx")
    quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
    inputs = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"]).get_inputs()
    reader = TrainingImages(inputs[0].name, count=calibration_images, size=CALIBRATION_SIZE)
    extra: dict = {"CalibPercentile": percentile}
    if seven_bit_dense:
        extra["TensorQuantOverrides"] = {
            weight: [{"axis": 0, "reduce_range": True}] for weight in dense_conv_weights(prepared)
        }
    try:
        quantize_static(
            str(prepared),
            str(target),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=weight_type,
            calibrate_method=CalibrationMethod.Percentile,
            nodes_to_exclude=list(keep_float),
            extra_options=extra,
        )
    finally:
        prepared.unlink(missing_ok=True)
    return target


def dense_conv_weights(model_path: Path) -> list[str]:
    """The weight tensors of a model's non-depthwise (group 1) convolutions."""
    graph = onnx.load(str(model_path)).graph
    weights = {tensor.name for tensor in graph.initializer}
    return [
        node.input[1]
        for node in graph.node
        if node.op_type == "Conv"
        and node.input[1] in weights
        and all(a.i == 1 for a in node.attribute if a.name == "group")
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="float ONNX model")
    parser.add_argument("target", type=Path, help="int8 ONNX model to write")
    parser.add_argument("--calibration", type=int, default=CALIBRATION_IMAGES)
    parser.add_argument("--percentile", type=float, default=PERCENTILE)
    args = parser.parse_args(argv)
    quantize_density(
        args.source, args.target, calibration_images=args.calibration, percentile=args.percentile
    )
    print(f"{args.target}: {args.target.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
