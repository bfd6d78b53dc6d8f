"""The int8 density model on this CPU: the shipped file with and without onnxruntime's int8
kernels, beside the quantisation variants tried for CPUs whose int8 sums saturate.

On an x86 CPU without VNNI onnxruntime adds u8 x s8 products in saturating 16-bit pairs, so
the shipped int8 file counts differently there (``crowdwatch/estimators/cpu.py``). This prints
the validation MAE (``density_accuracy.py``'s sets) of:

- **float**: ``models/crowd_density.onnx``;
- **int8**: ``models/crowd_density_int8.onnx`` as onnxruntime runs it (its int8 kernels);
- **int8, kernels off**: the same file with the graph optimisations off, so that its
  quantise / dequantise pairs run around float convolutions: what the file computes exactly;
- variants quantised from the float file here (``crowdwatch.training.quantize``):
  **reduce_range** (7-bit weights everywhere), **u8 weights**, **first conv float**, and
  **7-bit dense** (7-bit weights in the non-depthwise convolutions only).

    python benchmarks/int8_variants.py [--limit N] [--skip-variants]

Each variant's calibration needs about 16 GB (see ``crowdwatch/training/quantize.py``).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import onnxruntime as ort
from density_accuracy import run
from onnxruntime.quantization import QuantType

from crowdwatch.estimators.cpu import int8_is_exact
from crowdwatch.estimators.density import (
    DensityEstimator,
    float_model_path,
    int8_model_path,
    session_options,
)
from crowdwatch.evaluation.datasets import data_root
from crowdwatch.training.quantize import KEEP_FLOAT, quantize_density

FIRST_CONV = "/low/low.0/low.0.1/Conv"
VARIANTS = {
    "reduce_range": {"reduce_range": True},
    "u8 weights": {"weight_type": QuantType.QUInt8},
    "first conv float": {"keep_float": (*KEEP_FLOAT, FIRST_CONV)},
    "7-bit dense": {"seven_bit_dense": True},
}


def without_int8_kernels(model: Path, threads: int = 2) -> DensityEstimator:
    """A density estimator on ``model`` whose session runs no graph optimisation (no fused int8
    kernels: each QDQ pair runs as quantise, dequantise, then the float operator)."""
    estimator = DensityEstimator(model, threads=threads)
    options = session_options(threads)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    estimator._session = ort.InferenceSession(
        str(model), options, providers=["CPUExecutionProvider"]
    )
    return estimator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="at most this many images per set")
    parser.add_argument("--skip-variants", action="store_true", help="only the shipped files")
    args = parser.parse_args()
    print(f"# int8_variants {time.strftime('%Y-%m-%d %H:%M')}, {platform.machine()}, "
          f"int8 exact on this CPU: {int8_is_exact()}")  # fmt: skip
    root = data_root()
    rows = {
        "float": lambda: DensityEstimator(float_model_path()),
        "int8": lambda: DensityEstimator(int8_model_path()),
        "int8, kernels off": lambda: without_int8_kernels(int8_model_path()),
    }
    with tempfile.TemporaryDirectory() as folder:
        if not args.skip_variants:
            for name, settings in VARIANTS.items():
                target = Path(folder) / f"{name.replace(' ', '_')}.onnx"
                rows[name] = lambda t=target, s=settings: DensityEstimator(
                    quantize_density(float_model_path(), t, **s)
                )
        for name, build in rows.items():
            print(f"--- {name}", flush=True)
            run({"density": build()}, root, args.limit)


if __name__ == "__main__":
    main()
