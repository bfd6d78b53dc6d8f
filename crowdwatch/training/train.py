"""Resumable CPU/GPU training of the density network.

Run (detached, resumes from ``OUT/last.pt`` when ``--resume`` is given)::

    nohup nice -n 10 .venv/bin/python -m crowdwatch.training.train --out training_runs/density \\
        --resume > training_runs/train.log 2>&1 &

Writes to ``--out``: ``last.pt`` (everything needed to resume), ``best.pt`` (EMA weights with the
best validation score), ``log.jsonl`` (one JSON object per line: ``kind`` "train" rows with the
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
    load_training_pool,
    random_crop,
    to_network_batch,
)
from crowdwatch.training.model import DensityNet, build_pretrained_net

# Validation targets (MAE) that weigh the sets in the single "best checkpoint" score.
VAL_TARGETS = {
    "shanghaitech/part_B_train": 12.0,
    "shanghaitech/part_A_train": 110.0,
    "beijing_brt/train": 2.5,
}
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


def parse_args(argv: list[str] | None) -> tuple[TrainConfig, bool]:
    p = argparse.ArgumentParser(prog="crowdwatch train", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("training_runs/density"))
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt if present")
    defaults = TrainConfig(out=Path("."))
    for name in (f.name for f in dataclasses.fields(TrainConfig) if f.name != "out"):
        value = getattr(defaults, name)
        p.add_argument("--" + name.replace("_", "-"), type=type(value), default=value)
    args = p.parse_args(argv)
    resume = args.resume
    fields = {k: v for k, v in vars(args).items() if k != "resume"}
    return TrainConfig(**fields), resume


def learning_rate_factor(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 5 % over ``total_steps``."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = min(
        1.0, (step - config.warmup_steps) / max(1, config.total_steps - config.warmup_steps)
    )
    return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress))


def freeze_trunk_batchnorm(net: DensityNet) -> None:
    """Keep the trunk's BatchNorm statistics at their COCO values (batches of 4 are too small)."""
    for module in net.trunk_modules():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.eval()


def density_loss(pred: torch.Tensor, target: torch.Tensor, count_weight: float) -> torch.Tensor:
    """Squared error on 10 x density summed over cells, plus an L1 loss on each crop's count."""
    squared = ((pred - target) * 10.0).pow(2).sum(dim=(1, 2, 3)).mean() / 100.0
    count = (pred.sum(dim=(1, 2, 3)) - target.sum(dim=(1, 2, 3))).abs().mean()
    return squared + count_weight * count


@torch.no_grad()
def predict_count(net: DensityNet, image_bgr: np.ndarray, max_side: int, device: str) -> float:
    x = torch.from_numpy(prepare_input(image_bgr, max_side)).to(device)
    return float(net(x).sum())


@torch.no_grad()
def validate(net: DensityNet, root: Path, max_side: int, device: str) -> dict[str, float]:
    """MAE and root-mean-square error per validation set, on whole images."""
    net.eval()
    metrics: dict[str, float] = {}
    score = 0.0
    for dataset, folder in TRAIN_SOURCES:
        items = select_split(
            dataset, root / folder, annotated_samples(dataset, root / folder), "val"
        )
        errors = np.array(
            [predict_count(net, s.load(), max_side, device) - s.count for s in items], np.float64
        )
        short = SHORT_NAMES[folder]
        metrics[f"{short}_mae"] = float(np.abs(errors).mean())
        metrics[f"{short}_mse"] = float(np.sqrt((errors**2).mean()))
        metrics[f"{short}_bias"] = float(errors.mean())
        score += metrics[f"{short}_mae"] / VAL_TARGETS[folder]
    metrics["score"] = score / len(VAL_TARGETS)
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

    def __init__(self, config: TrainConfig):
        self.config = config
        self.net = build_pretrained_net().to(config.device)
        self.ema = copy.deepcopy(self.net).eval()
        trunk = [p for m in self.net.trunk_modules() for p in m.parameters()]
        self.optimizer = torch.optim.Adam(
            [
                {"params": trunk, "lr": config.lr_trunk, "base_lr": config.lr_trunk},
                {
                    "params": self.net.head.parameters(),
                    "lr": config.lr_head,
                    "base_lr": config.lr_head,
                },
            ]
        )
        self.step = 0
        self.elapsed_s = 0.0
        self.best_score = math.inf

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

    def train_step(self, batch: torch.Tensor, target: torch.Tensor) -> float:
        factor = learning_rate_factor(self.step, self.config)
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        self.net.train()
        freeze_trunk_batchnorm(self.net)
        loss = density_loss(self.net(batch), target, self.config.count_weight)
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
) -> tuple[torch.Tensor, torch.Tensor]:
    crops, targets = [], []
    for index in rng.choice(len(pool), config.batch_size, p=probabilities):
        image, target = random_crop(pool[int(index)], rng, crop)
        crops.append(image)
        targets.append(target)
    batch = torch.from_numpy(to_network_batch(crops)).to(config.device)
    target = torch.from_numpy(np.stack(targets)[:, None]).to(config.device)
    return batch, target


def run(config: TrainConfig, resume: bool) -> Path:
    """Train until ``total_steps`` (or ``max_minutes``); returns the best checkpoint's path."""
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    config.out.mkdir(parents=True, exist_ok=True)
    log_path, last_path, best_path = (config.out / n for n in ("log.jsonl", "last.pt", "best.pt"))
    trainer = Trainer(config)
    if resume and last_path.is_file():
        trainer.load(torch.load(last_path, map_location=config.device, weights_only=False))
        _log(log_path, {"kind": "resume", "step": trainer.step, "elapsed_s": trainer.elapsed_s})
    root = data_root()
    pool = load_training_pool(root)
    _log(log_path, {"kind": "start", "step": trainer.step, "train_images": len(pool)})
    # Seeded by step so a resumed run draws fresh but reproducible crops.
    rng = np.random.default_rng(config.seed + trainer.step)
    probabilities = image_probabilities(pool, config.source_weights)
    crop = CropConfig(height=config.crop_height, width=config.crop_width)
    session_start = time.monotonic()
    last_eval = last_save = time.monotonic()
    losses: list[float] = []
    steps_per_epoch = len(pool) / config.batch_size
    eval_period_steps = max(1, round(config.eval_every_epochs * steps_per_epoch))
    while trainer.step < config.total_steps:
        t0 = time.monotonic()
        loss = trainer.train_step(*sample_batch(pool, rng, config, crop, probabilities))
        trainer.elapsed_s += time.monotonic() - t0
        losses.append(loss)
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
                },
            )
            losses = []
        now = time.monotonic()
        out_of_time = config.max_minutes > 0 and now - session_start > config.max_minutes * 60
        if config.eval_every_epochs > 0:
            eval_due = trainer.step % eval_period_steps == 0
        else:
            eval_due = now - last_eval > config.eval_every_s
        if eval_due or out_of_time or trainer.step == config.total_steps:
            metrics = validate(trainer.ema, root, config.max_side, config.device)
            _log(
                log_path,
                {
                    "kind": "eval",
                    "step": trainer.step,
                    "epoch": round(trainer.step / steps_per_epoch, 2),
                    "elapsed_s": round(trainer.elapsed_s),
                    **metrics,
                },
            )
            if metrics["score"] < trainer.best_score:
                trainer.best_score = metrics["score"]
                _atomic_save(
                    {"model": trainer.ema.state_dict(), "step": trainer.step, "metrics": metrics},
                    best_path,
                )
            last_eval = time.monotonic()
            last_save = 0.0  # save right after every evaluation
        if now - last_save > config.save_every_s or out_of_time:
            _atomic_save(trainer.state(), last_path)
            last_save = time.monotonic()
        if out_of_time:
            break
    _atomic_save(trainer.state(), last_path)
    return best_path


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m crowdwatch.training.train`` and ``crowdwatch train``."""
    config, resume = parse_args(argv)
    run(config, resume)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
