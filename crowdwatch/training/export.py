"""Export a trained density network to ONNX (opset 17, dynamic batch, height and width).

Usage::

    python -m crowdwatch.training.export training_runs/density/best.pt models/crowd_density.onnx
    python -m crowdwatch.training.export --dynamic-batch models/crowd_density_int8.onnx

The checkpoint may be ``best.pt`` (EMA weights under ``model``) or ``last.pt`` (``ema`` is used).
A zero-inflated (two-channel) network exports its mean density, so the ONNX has the same single
``density`` output either way.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from crowdwatch.training.model import DensityNet, checkpoint_weights, network_for_state

OPSET = 17


def load_checkpoint_net(checkpoint: Path) -> DensityNet:
    """The network of a training checkpoint, in eval mode (EMA weights when present)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    weights = checkpoint_weights(state)
    net = network_for_state(weights)
    net.load_state_dict(weights)
    return net.eval()


def export_onnx(net: DensityNet, path: Path) -> Path:
    """Write ``net`` as ONNX: input ``image`` (N, 3, H, W), output ``density`` (N, 1, H/8, W/8)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 3, 384, 512)
    torch.onnx.export(
        net.eval(),
        (dummy,),
        str(path),
        input_names=["image"],
        output_names=["density"],
        dynamic_axes={
            "image": {0: "batch", 2: "height", 3: "width"},
            "density": {0: "batch", 2: "cells_h", 3: "cells_w"},
        },
        opset_version=OPSET,
        dynamo=False,
    )
    return path


def make_batch_dynamic(path: Path) -> Path:
    """Rewrite an exported model (float or int8) so its first axis is the symbolic ``batch``:
    several cameras' frames of one size then run in one call (the GPU path batches them). The
    network is fully convolutional, so only the declared shapes change, not the weights or
    any result."""
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    for value in [*graph.input, *graph.output, *graph.value_info]:
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 4:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "batch"
    onnx.save(model, str(path))
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Export a density checkpoint to ONNX.")
    p.add_argument("checkpoint", type=Path, nargs="?")
    p.add_argument("onnx", type=Path)
    p.add_argument(
        "--dynamic-batch", action="store_true", help="only give the exported ONNX a batch axis"
    )
    args = p.parse_args(argv)
    if args.dynamic_batch:
        make_batch_dynamic(args.onnx)
        print(f"{args.onnx}: batch axis made dynamic")
        return 0
    if args.checkpoint is None:
        p.error("a checkpoint is needed to export")
    export_onnx(load_checkpoint_net(args.checkpoint), args.onnx)
    print(f"wrote {args.onnx} ({args.onnx.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
