"""The int8 density model: onnxruntime static quantisation of the float export.

Usage::

    python -m crowdwatch.training.quantize models/crowd_density.onnx models/crowd_density_int8.onnx

Weights become signed integers per output channel (7-bit in the non-depthwise convolutions,
8-bit in the depthwise ones) and activations uint8 (QDQ format), each activation's
range the 0.001 – 99.999 percentiles of its values over :data:`CALIBRATION_IMAGES` training
images (never the validation split) resized to 1024x768. Percentile ranges, unlike min-max ones,
ignore the few extreme activations of dense scenes that would otherwise stretch every range and
cost its resolution: min-max calibration moved ShanghaiTech A's validation MAE by +7 %, these
ranges by +1.0 % (``benchmarks/quantize_density.py`` measures it). The 1x1 convolution that makes
the density stays in float: its output is the count. Then each convolution's bias absorbs the
mean error quantisation left in its output (:func:`correct_conv_biases`).

Why 7 bits: without VNNI, x86 CPUs make onnxruntime's u8 x s8 products in pairs summed in a
saturating 16-bit register (``VPMADDUBSW``); with 8-bit weights such sums overflow in dense
scenes and the file counted 12.92 / 86.28 on ShanghaiTech B / A there against 9.55 / 70.80 where
they do not. With weights within ±64 no pair can overflow, so the file counts the same on every
CPU (``benchmarks/int8_variants.py``).

Histogram calibration keeps every calibration image's activations in memory, about 1 GB per
1024x768 image: 16 images need about 16 GB.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from crowdwatch.estimators.density import prepare_input, session_options
from crowdwatch.evaluation.datasets import data_root, iter_dataset

#: (dataset kind, folder under the data root) of the training images calibration reads, in turn.
TRAIN_SETS = (
    ("shanghaitech", "shanghaitech/part_B_train"),
    ("shanghaitech", "shanghaitech/part_A_train"),
    ("brt", "beijing_brt/train"),
)
CALIBRATION_IMAGES = 16
#: Training images whose channel means bias correction matches (8 took 2 minutes here).
BIAS_CORRECTION_IMAGES = 8
#: Calibration images are resized to this (width, height): histogram calibration needs one shape.
CALIBRATION_SIZE = (1024, 768)
PERCENTILE = 99.999
#: The 1x1 convolution that makes the density: kept in float, its output is the count. Entries
#: match node names by their end: the shipped file names it ``/head/head.8/Conv``, exports of
#: the networks that add to the head's first layer (context, deep stage) ``/head.8/Conv``.
KEEP_FLOAT = ("head.8/Conv",)
#: Name prefixes of the nodes after the density that also stay in float: the spacing head and
#: the count calibration it drives (``SpacingGain``), whose product with the density is the
#: output (a uint8 step there would quantise the count itself).
KEEP_FLOAT_PREFIXES = ("/spacing/", "/spacing_gain/")


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
    seven_bit_dense: bool = True,
    bias_correction: bool = True,
) -> Path:
    """Write the int8 (QDQ) variant of the float model ``source`` to ``target``.

    The defaults make the shipped file: 7-bit weights in the non-depthwise convolutions
    (``seven_bit_dense``), so that no pair of u8 x s8 products can pass 16 bits (255 x 64 x 2 <
    2¹⁵) and the file counts the same on every CPU, and :func:`correct_conv_biases` after it. The
    other settings are the variants tried (``benchmarks/int8_variants.py``):
    ``weight_type=QuantType.QUInt8`` (u8 x u8), ``reduce_range`` (7-bit weights everywhere)
    and 8-bit weights throughout (``seven_bit_dense=False``: the file shipped until 2026-12-03,
    exact only on CPUs with VNNI).
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
            nodes_to_exclude=float_nodes(prepared, keep_float),
            extra_options=extra,
        )
    finally:
        prepared.unlink(missing_ok=True)
    if bias_correction:
        correct_conv_biases(source, target)
    return target


def correct_conv_biases(
    float_model: Path,
    quantized_model: Path,
    *,
    calibration_images: int = BIAS_CORRECTION_IMAGES,
) -> int:
    """Fold each convolution's mean quantisation error into its int32 bias, in place, one
    convolution after another in the graph's order.

    Rounding weights and activations shifts a convolution's output by an error whose mean over
    the data is not zero: uncorrected, the 7-bit file counts 2 – 3 % above the float one. For each
    quantised convolution in turn, with the corrections before it already made, the shift of
    output channel ``o`` is

        ``shift[o] = E[y_q[o]] - E[y[o]]``

    the mean over ``calibration_images`` training images of what the next layer sees from the
    quantised model (its quantise / dequantise pairs run in float, graph optimisations off)
    minus the float model's same tensor, and the bias becomes ``b - shift``
    (empirical bias correction, Nagel et al. 2019, "Data-Free Quantization Through Weight
    Equalization and Bias Correction"). Correcting in order lets each convolution also absorb
    the mean error that reaches it from the layers before. The means matched are those after
    the folded ReLU, what the next layer reads: matching the convolutions' outputs before it
    instead (the paper's choice) read ShanghaiTech B 10.58 against float's 9.54, this 9.47.
    Returns the number corrected.
    """
    quantized = onnx.load(str(quantized_model))
    convs = _biased_convs(quantized.graph)
    feeds = list(_calibration_feeds(quantized, calibration_images))
    reference = _channel_means(
        onnx.load(str(float_model)), [conv.output_name for conv in convs], feeds, optimise=True
    )
    initializers = {t.name: t for t in quantized.graph.initializer}
    for conv in convs:
        seen = _channel_means(quantized, [conv.seen_as], feeds, optimise=False)[conv.seen_as]
        bias = initializers[conv.bias_name]
        shift = seen - reference[conv.output_name]
        corrected = numpy_helper.to_array(bias) * conv.bias_scale - shift
        rounded = np.round(corrected / conv.bias_scale).astype(np.int32)
        bias.CopyFrom(numpy_helper.from_array(rounded, bias.name))
    onnx.save(quantized, str(quantized_model))
    return len(convs)


@dataclass(frozen=True)
class _BiasedConv:
    """A QDQ convolution with a quantised bias: what bias correction needs of it."""

    output_name: str  # the float model's tensor of the same name is the reference
    seen_as: str  # the dequantised tensor the next layers read
    bias_name: str  # the int32 initialiser
    bias_scale: np.ndarray  # (out,), input scale x weight scale


def _biased_convs(graph: onnx.GraphProto) -> list[_BiasedConv]:
    """A QDQ graph's convolutions whose bias is a quantised initialiser, in graph order.

    Quantisation folds a convolution's ReLU / ReLU6 into the range of the quantisation after
    it, and the convolution takes over the activation's output name; the tensor after that
    quantise / dequantise pair is what the next layer reads, and what the float model's tensor of
    that name holds."""
    producer = {output: node for node in graph.node for output in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    scales = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    found = []
    for node in graph.node:
        bias = (
            producer.get(node.input[2]) if node.op_type == "Conv" and len(node.input) > 2 else None
        )
        if bias is None or bias.op_type != "DequantizeLinear":
            continue
        seen_as = node.output[0]
        for quantize in consumers.get(seen_as, []):
            if quantize.op_type == "QuantizeLinear":
                dequantize = consumers[quantize.output[0]][0]
                seen_as = dequantize.output[0]
                break
        found.append(
            _BiasedConv(
                output_name=node.output[0],
                seen_as=seen_as,
                bias_name=bias.input[0],
                bias_scale=scales[bias.input[1]].astype(np.float64),
            )
        )
    return found


def _calibration_feeds(model: onnx.ModelProto, count: int) -> Iterator[dict[str, np.ndarray]]:
    reader = TrainingImages(model.graph.input[0].name, count=count, size=CALIBRATION_SIZE)
    while (feed := reader.get_next()) is not None:
        yield feed


def _channel_means(
    model: onnx.ModelProto, names: list[str], feeds: list[dict], *, optimise: bool
) -> dict[str, np.ndarray]:
    """The mean of each channel of the tensors ``names`` of ``model`` over ``feeds``; without
    ``optimise`` no graph optimisation runs (a QDQ model's pairs stay quantise, dequantise)."""
    probed = onnx.ModelProto()
    probed.CopyFrom(model)
    outputs = {output.name for output in probed.graph.output}
    probed.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names if n not in outputs)
    session = ort.InferenceSession(
        probed.SerializeToString(),
        session_options(optimise=optimise),
        providers=["CPUExecutionProvider"],
    )
    sums = dict.fromkeys(names, 0.0)
    for feed in feeds:
        for name, value in zip(names, session.run(names, feed), strict=True):
            sums[name] = sums[name] + value.astype(np.float64).mean(axis=(0, 2, 3))
    return {name: total / len(feeds) for name, total in sums.items()}


def float_nodes(model_path: Path, keep_float: tuple[str, ...]) -> list[str]:
    """The model's nodes that stay in float: names ending with one of ``keep_float`` or starting
    with one of :data:`KEEP_FLOAT_PREFIXES`."""
    graph = onnx.load(str(model_path)).graph
    return [
        node.name
        for node in graph.node
        if node.name.endswith(keep_float) or node.name.startswith(KEEP_FLOAT_PREFIXES)
    ]


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
