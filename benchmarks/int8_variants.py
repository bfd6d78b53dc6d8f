"""The int8 density model on this CPU: the shipped file with and without onnxruntime's int8
kernels, beside the quantisation variants tried.

On an x86 CPU without VNNI onnxruntime adds u8 x s8 products in saturating 16-bit pairs, so a
file with 8-bit weights counts differently there; the shipped file has 7-bit weights where that
could happen and its biases corrected (``crowdwatch/training/quantize.py``). This prints the
validation MAE (``density_accuracy.py``'s sets) of:

- **float**: ``models/crowd_density.onnx``;
- **int8**: ``models/crowd_density_int8.onnx`` as onnxruntime runs it (its int8 kernels);
- **int8, kernels off**: the same file with the graph optimisations off, so that its
  quantise / dequantise pairs run around float convolutions: what the file computes exactly;
- variants quantised from the float file here (``crowdwatch.training.quantize``):
  **8-bit** (the file shipped until 2026-12-03, exact only with VNNI) with its kernels and
  with them off, **reduce_range** (7-bit weights everywhere), **u8 weights**, **first conv
  float** (8-bit otherwise), and **7-bit dense, uncorrected** (the shipped file without its
  bias correction).

    python benchmarks/int8_variants.py [--limit N] [--skip-variants]

Each variant's calibration needs about 16 GB (see ``crowdwatch/training/quantize.py``).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

from density_accuracy import cpu_model, run
from onnxruntime.quantization import QuantType

from crowdwatch.estimators.density import (
    DensityEstimator,
    float_model_path,
    int8_model_path,
)
from crowdwatch.evaluation.datasets import data_root
from crowdwatch.training.quantize import KEEP_FLOAT, quantize_density

FIRST_CONV = "/low/low.0/low.0.1/Conv"
EIGHT_BIT = {"seven_bit_dense": False, "bias_correction": False}
VARIANTS = {
    "8-bit": EIGHT_BIT,
    "reduce_range": {**EIGHT_BIT, "reduce_range": True},
    "u8 weights": {**EIGHT_BIT, "weight_type": QuantType.QUInt8},
    "first conv float": {**EIGHT_BIT, "keep_float": (*KEEP_FLOAT, FIRST_CONV)},
    "7-bit dense, uncorrected": {"bias_correction": False},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="at most this many images per set")
    parser.add_argument("--skip-variants", action="store_true", help="only the shipped files")
    args = parser.parse_args()
    print(f"# int8_variants {time.strftime('%Y-%m-%d %H:%M')}, {platform.machine()}, "
          f"{cpu_model()}")  # fmt: skip
    root = data_root()
    rows = {
        "float": lambda: DensityEstimator(float_model_path()),
        "int8": lambda: DensityEstimator(int8_model_path()),
        "int8, kernels off": lambda: DensityEstimator(int8_model_path(), optimise=False),
    }
    with tempfile.TemporaryDirectory() as folder:
        if not args.skip_variants:
            for name, settings in VARIANTS.items():
                target = Path(folder) / f"{name.replace(' ', '_')}.onnx"
                rows[name] = lambda t=target, s=settings: DensityEstimator(
                    quantize_density(float_model_path(), t, **s)
                )
                if name == "8-bit":
                    rows["8-bit, kernels off"] = lambda t=target: DensityEstimator(
                        t, optimise=False
                    )
        for name, build in rows.items():
            print(f"--- {name}", flush=True)
            run({"density": build()}, root, args.limit)


if __name__ == "__main__":
    main()
