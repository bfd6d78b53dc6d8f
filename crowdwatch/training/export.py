"""Export a trained density network to ONNX (opset 17, dynamic height and width).

Usage::

    python -m crowdwatch.training.export training_runs/density/best.pt models/crowd_density.onnx

The checkpoint may be ``best.pt`` (EMA weights under ``model``) or ``last.pt`` (``ema`` is used).
A zero-inflated (two-channel) network exports its mean density, so the ONNX has the same single
``density`` output either way.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from crowdwatch.training.model import DensityNet, checkpoint_weights, is_zero_inflated_state

OPSET = 17


def load_checkpoint_net(checkpoint: Path) -> DensityNet:
    """The network of a training checkpoint, in eval mode (EMA weights when present)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    weights = checkpoint_weights(state)
    net = DensityNet(zero_inflated=is_zero_inflated_state(weights))
    net.load_state_dict(weights)
    return net.eval()


def export_onnx(net: DensityNet, path: Path) -> Path:
    """Write ``net`` as ONNX: input ``image`` (1, 3, H, W), output ``density`` (1, 1, H/8, W/8)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 3, 384, 512)
    torch.onnx.export(
        net.eval(),
        (dummy,),
        str(path),
        input_names=["image"],
        output_names=["density"],
        dynamic_axes={"image": {2: "height", 3: "width"}, "density": {2: "cells_h", 3: "cells_w"}},
        opset_version=OPSET,
        dynamo=False,
    )
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Export a density checkpoint to ONNX.")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("onnx", type=Path)
    args = p.parse_args(argv)
    export_onnx(load_checkpoint_net(args.checkpoint), args.onnx)
    print(f"wrote {args.onnx} ({args.onnx.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
