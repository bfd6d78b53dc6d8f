"""Training pieces on real annotated images: density targets, crops, and a resumable tiny run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from crowdwatch.evaluation.datasets import annotated_samples, data_root, load_val_split
from crowdwatch.training.data import (
    TRAIN_SOURCES,
    CropConfig,
    TrainImage,
    density_target,
    random_crop,
    to_network_batch,
)

torch = pytest.importorskip("torch")


def _real_sample(folder: str = "shanghaitech/part_B_train") -> TrainImage:
    path = data_root() / folder
    if not path.is_dir():
        pytest.skip(f"{path} absent")
    item = annotated_samples("brt" if "brt" in folder else "shanghaitech", path)[0]
    return TrainImage(folder, item.name, item.load(), item.points)


def _real_crop_batch(seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """A 128x160 crop of a real training image as a network batch, with its cell target."""
    crop, target = random_crop(
        _real_sample(),
        np.random.default_rng(seed),
        CropConfig(height=128, width=160, min_scale=1.0, max_scale=1.0, sigma_cells=1.0),
    )
    return torch.from_numpy(to_network_batch([crop])), target


def test_density_target_has_one_unit_of_mass_per_head_inside() -> None:
    points = np.array([[3.0, 3.0], [100.0, 50.0], [127.9, 63.9], [-1.0, 5.0], [10.0, 64.0]])
    target = density_target(points.astype(np.float32), 64, 128, sigma_cells=1.0)
    assert target.shape == (8, 16)
    assert target.sum() == pytest.approx(3.0, rel=1e-5)  # the last two lie outside
    assert target.min() >= 0.0


def test_random_crops_keep_the_heads_they_contain() -> None:
    sample = _real_sample()
    rng = np.random.default_rng(0)
    config = CropConfig(height=256, width=320, min_scale=1.0, max_scale=1.0, sigma_cells=0.0)
    for _ in range(5):
        crop, target = random_crop(sample, rng, config)
        assert crop.shape == (256, 320, 3) and crop.dtype == np.uint8
        assert target.shape == (32, 40)
        assert float(target.sum()) == pytest.approx(round(float(target.sum())))
        assert 0 <= target.sum() <= sample.points.shape[0]
    batch = to_network_batch([crop, crop])
    assert batch.shape == (2, 3, 256, 320) and batch.min() >= -1.0 and batch.max() <= 1.0


def test_scaled_crop_of_the_whole_image_keeps_every_head() -> None:
    sample = _real_sample("beijing_brt/train")
    h, w = sample.image.shape[:2]
    rng = np.random.default_rng(1)
    config = CropConfig(height=2 * h, width=2 * w, min_scale=2.0, max_scale=2.0, sigma_cells=1.0)
    _, target = random_crop(sample, rng, config)
    assert target.sum() == pytest.approx(len(sample.points), rel=1e-4)


def _tiny_dataset(tmp_path: Path) -> Path:
    """Two training and one validation image of each source, linked from the real data."""
    root = data_root()
    split = load_val_split()
    for dataset, folder in TRAIN_SOURCES:
        if not (root / folder).is_dir():
            pytest.skip(f"{root / folder} absent")
        items = annotated_samples(dataset, root / folder)
        val = [s for s in items if s.name in set(split[folder])][:1]
        train = [s for s in items if s.name not in set(split[folder])][:2]
        for item in val + train:
            gt = item.image_path.parents[1] / "ground_truth"
            gt_name = f"GT_{item.image_path.stem}.mat" if dataset == "shanghaitech" else None
            gt_file = gt / (gt_name or f"{item.image_path.stem}.mat")
            for source, sub in ((item.image_path, item.image_path.parent.name), (gt_file, gt.name)):
                target = tmp_path / folder / sub / source.name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(source)
    return tmp_path


def test_tiny_training_run_logs_checkpoints_and_resumes(tmp_path, monkeypatch) -> None:
    from crowdwatch.training.train import main

    monkeypatch.setenv("CROWDWATCH_DATA", str(_tiny_dataset(tmp_path / "data")))
    out = tmp_path / "run"
    common = ["--out", str(out), "--batch-size", "2", "--crop-height", "128", "--crop-width", "128"]
    common += ["--warmup-steps", "2", "--max-side", "320"]
    assert main([*common, "--total-steps", "2"]) == 0
    assert main([*common, "--total-steps", "3", "--resume"]) == 0
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    kinds = [r["kind"] for r in rows]
    assert kinds.count("eval") == 2 and "resume" in kinds
    evals = [r for r in rows if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [2, 3]
    assert all(np.isfinite(r[f"{s}_mae"]) for r in evals for s in ("shb", "sha", "brt"))
    state = torch.load(out / "last.pt", weights_only=False)
    assert state["step"] == 3
    assert (out / "best.pt").is_file() and (out / "best_state.pt").is_file()


def test_validation_every_epoch_is_logged_with_the_epoch(tmp_path, monkeypatch) -> None:
    from crowdwatch.training.train import main

    monkeypatch.setenv("CROWDWATCH_DATA", str(_tiny_dataset(tmp_path / "data")))
    out = tmp_path / "run"
    # 6 training images in batches of 2: an epoch is 3 steps.
    args = ["--out", str(out), "--batch-size", "2", "--crop-height", "128", "--crop-width", "128"]
    args += ["--max-side", "320", "--total-steps", "6", "--eval-every-epochs", "1"]
    assert main(args) == 0
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r["kind"] == "eval"]
    assert [(r["step"], r["epoch"]) for r in evals] == [(3, 1.0), (6, 2.0)]


def test_source_weights_set_each_sources_share_of_the_draws() -> None:
    from crowdwatch.training.train import image_probabilities

    blank = np.zeros((16, 16, 3), np.uint8)
    none = np.zeros((0, 2), np.float32)
    pool = [TrainImage("shanghaitech/part_B_train", f"b{i}", blank, none) for i in range(1)]
    pool += [TrainImage("shanghaitech/part_A_train", f"a{i}", blank, none) for i in range(3)]
    pool += [TrainImage("beijing_brt/train", f"t{i}", blank, none) for i in range(6)]
    uniform = image_probabilities(pool, "")
    assert np.allclose(uniform, 0.1)
    weighted = image_probabilities(pool, "shb=0.5, sha=0.2,brt=0.3")
    assert weighted.sum() == pytest.approx(1.0)
    assert weighted[0] == pytest.approx(0.5)
    assert weighted[1:4].sum() == pytest.approx(0.2) and weighted[4:].sum() == pytest.approx(0.3)
    with pytest.raises(ValueError, match="unknown sources"):
        image_probabilities(pool, "shc=1")


# --- counting losses (tiny synthetic inputs, no data needed) ---------------------------------


def _point_mass(cells_h: int, cells_w: int, cells: list[tuple[int, int]]) -> torch.Tensor:
    """(1, 1, h, w) density with one unit of mass on each (row, col) cell."""
    density = torch.zeros(1, 1, cells_h, cells_w)
    for row, col in cells:
        density[0, 0, row, col] += 1.0
    return density


def _centres(cells: list[tuple[int, int]]) -> np.ndarray:
    return np.array([[(c + 0.5) * 8, (r + 0.5) * 8] for r, c in cells], np.float32)


def test_bayesian_loss_is_zero_for_a_perfect_prediction_and_has_finite_gradients() -> None:
    from crowdwatch.training.losses import bayesian_loss

    heads = [(2, 3), (10, 12)]  # far apart: each cell belongs to its own head
    perfect = _point_mass(16, 20, heads)
    loss, parts = bayesian_loss(perfect, [_centres(heads)])
    assert float(loss) == pytest.approx(0.0, abs=1e-3)
    assert parts["background"] == pytest.approx(0.0, abs=1e-3)
    pred = torch.rand(2, 1, 16, 20, requires_grad=True)
    loss, parts = bayesian_loss(pred, [_centres(heads), np.zeros((0, 2), np.float32)])
    loss.backward()
    assert torch.isfinite(pred.grad).all() and float(pred.grad.abs().sum()) > 0
    # An empty crop: all predicted mass is background, the loss is the predicted count.
    empty, _ = bayesian_loss(pred[1:].detach(), [np.zeros((0, 2), np.float32)])
    assert float(empty) == pytest.approx(float(pred[1].sum()), rel=1e-5)


def test_bayesian_loss_punishes_mass_far_from_every_head() -> None:
    from crowdwatch.training.losses import bayesian_loss

    heads = [(4, 4)]
    near, _ = bayesian_loss(_point_mass(16, 20, [(4, 5)]), [_centres(heads)])
    far, parts = bayesian_loss(_point_mass(16, 20, [(14, 18)]), [_centres(heads)])
    assert float(near) < 0.5 < float(far)
    assert parts["background"] > 0.9  # the far mass went to the background


def test_sinkhorn_plan_has_the_requested_marginals() -> None:
    from crowdwatch.training.losses import cell_centres, sinkhorn_log, squared_distances

    gen = torch.Generator().manual_seed(0)
    points = torch.rand(7, 2, generator=gen) * torch.tensor([80.0, 48.0])
    cost = squared_distances(points, cell_centres(6, 10))
    a = torch.full((7,), 1 / 7)
    b = torch.rand(60, generator=gen)
    b = b / b.sum()
    _, g, plan = sinkhorn_log(a, b, cost, reg=10.0, iterations=200)
    assert torch.allclose(plan.sum(dim=0), b, atol=1e-4)
    assert torch.allclose(plan.sum(dim=1), a, atol=2e-2)
    assert torch.isfinite(g).all()


def test_dm_count_loss_behaves_on_tiny_maps() -> None:
    from crowdwatch.training.losses import dm_count_loss, ot_loss

    heads = [(2, 3), (9, 12)]
    points = _centres(heads)
    perfect = _point_mass(12, 16, heads)
    _, parts = dm_count_loss(perfect, [points], iterations=60)
    assert parts["count"] == pytest.approx(0.0, abs=1e-5)
    assert parts["tv"] == pytest.approx(0.0, abs=1e-5)
    assert parts["ot"] < 10.0  # the entropic plan's cost stays near zero (cells are 64 px^2)
    # Moving the mass of one head towards it lowers the transport cost, step by step.
    costs = []
    for col in (15, 11, 7, 4):
        density = _point_mass(12, 16, [(2, col), (9, 12)])
        costs.append(float(ot_loss(density[0, 0], torch.from_numpy(points), iterations=60)))
    assert costs == sorted(costs, reverse=True) and costs[0] > 10 * costs[-1]
    pred = torch.rand(2, 1, 12, 16, requires_grad=True)
    loss, _ = dm_count_loss(pred, [points, np.zeros((0, 2), np.float32)])
    loss.backward()
    assert torch.isfinite(pred.grad).all()
    # The OT gradient says "move mass from far cells to near ones": at a far cell it is larger.
    density = torch.full((12, 16), 0.05, requires_grad=True)
    ot_loss(density, torch.from_numpy(points[:1]), iterations=60).backward()
    assert float(density.grad[2, 3]) < float(density.grad[11, 15])


def test_training_options_parse_loss_choice_flags_and_a_phase_schedule() -> None:
    from crowdwatch.training.train import learning_rate_factor, parse_args

    config, resume = parse_args(
        ["--loss", "bayes", "--reset-best", "--phase-start", "100", "--total-steps", "300"]
        + ["--warmup-steps", "10", "--lr-scale", "0.5", "--min-scale", "0.5"]
    )
    assert (config.loss, config.reset_best, config.min_scale, resume) == ("bayes", True, 0.5, False)
    assert parse_args([])[0].loss == "mse" and parse_args([])[0].reset_best is False
    with pytest.raises(SystemExit):
        parse_args(["--loss", "nonsense"])
    assert learning_rate_factor(100, config) == pytest.approx(0.05)  # warm-up restarts
    assert learning_rate_factor(110, config) == pytest.approx(0.5)
    assert learning_rate_factor(300, config) == pytest.approx(0.5 * 0.05)


def test_zero_inflated_poisson_likelihood_prefers_background_where_no_head_is() -> None:
    from crowdwatch.training.losses import zero_inflated_poisson_nll, zip_loss

    counts = torch.zeros(1, 1, 4, 4)
    counts[0, 0, 1, 1] = 2.0
    rate = torch.full((1, 1, 4, 4), 0.5)
    rate[0, 0, 1, 1] = 2.0
    # Spurious mass on empty cells costs less once those cells are called background (pi -> 1),
    # and a head cell costs more the more it is called background.
    low_pi, high_pi = torch.full_like(rate, 0.01), torch.full_like(rate, 0.99)
    mixed = low_pi.clone()
    mixed[counts == 0] = 0.99
    nll = {
        name: float(zero_inflated_poisson_nll(rate, pi, counts)[0])
        for name, pi in (("low", low_pi), ("high", high_pi), ("mixed", mixed))
    }
    assert nll["mixed"] < nll["low"] and nll["mixed"] < nll["high"]
    # Where pi is 0 it is the Poisson likelihood: -log(e^-2 2^2 / 2!) on the head cell.
    head_only = zero_inflated_poisson_nll(
        rate[..., 1:2, 1:2], 0 * rate[..., 1:2, 1:2], counts[..., 1:2, 1:2]
    )
    assert float(head_only[0]) == pytest.approx(2.0 - 2.0 * np.log(2.0) + np.log(2.0), rel=1e-4)
    # The whole loss has finite gradients on both channels, also for an empty crop.
    rate_p = torch.rand(2, 1, 12, 16, requires_grad=True)
    logit = torch.zeros(2, 1, 12, 16, requires_grad=True)
    loss, parts = zip_loss(rate_p, torch.sigmoid(logit), [_centres([(2, 3)]), np.zeros((0, 2))])
    loss.backward()
    assert {"nll", "count", "ot", "tv"} <= set(parts)
    assert torch.isfinite(rate_p.grad).all() and float(logit.grad.abs().sum()) > 0


def test_a_v1_model_widened_to_the_zip_head_keeps_its_counts_and_exports_one_output(
    tmp_path,
) -> None:
    import cv2
    import onnxruntime as ort

    from crowdwatch.estimators.density import prepare_input
    from crowdwatch.training.export import export_onnx, load_checkpoint_net
    from crowdwatch.training.model import DensityNet, zero_inflated_state

    state = torch.load(
        Path("models/training/density_last.pt"), map_location="cpu", weights_only=False
    )
    v1 = DensityNet().eval()
    v1.load_state_dict(state["ema"])
    frame = cv2.VideoCapture("sample_videos/pets2009_s2l1.mp4").read()[1]
    x = torch.from_numpy(prepare_input(frame, 1280))
    widened = zero_inflated_state(state["ema"])
    torch.save({"model": widened, "step": 1}, tmp_path / "zip.pt")
    net = load_checkpoint_net(tmp_path / "zip.pt")
    assert net.zero_inflated
    with torch.no_grad():
        v1_count, zip_count = float(v1(x).sum()), float(net(x).sum())
    # pi starts at sigmoid(-4) everywhere: 98.2 % of the v1 density.
    assert zip_count == pytest.approx(v1_count / (1 + np.exp(-4.0)), rel=1e-4)
    onnx = export_onnx(net, tmp_path / "zip.onnx")
    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    (density,) = session.run(None, {"image": x.numpy()})
    assert density.shape == (1, 1, x.shape[2] // 8, x.shape[3] // 8)
    assert float(density.sum()) == pytest.approx(zip_count, rel=1e-4)


def test_a_widened_head_predicts_what_the_shipped_checkpoint_did_and_then_learns(
    tmp_path: Path,
) -> None:
    """``--head-width 96 --init-from`` the committed checkpoint: the same density on a real
    PETS frame at the start (export included), and a training step moves the new channels'
    outgoing weights off zero."""
    import cv2

    from crowdwatch.estimators.density import prepare_input
    from crowdwatch.training.export import load_checkpoint_net
    from crowdwatch.training.model import DensityNet, head_width_of_state, widened_head_state
    from crowdwatch.training.train import TrainConfig, Trainer

    state = torch.load(
        Path("models/training/density_last.pt"), map_location="cpu", weights_only=False
    )
    shipped = DensityNet().eval()
    shipped.load_state_dict(state["ema"])
    wide = widened_head_state(state["ema"], 96)
    assert head_width_of_state(wide) == 96
    torch.save({"model": wide, "step": 1}, tmp_path / "wide.pt")
    net = load_checkpoint_net(tmp_path / "wide.pt")
    frame = cv2.VideoCapture("sample_videos/pets2009_s2l1.mp4").read()[1]
    x = torch.from_numpy(prepare_input(frame, 1280))
    with torch.no_grad():
        np.testing.assert_allclose(net(x).numpy(), shipped(x).numpy(), rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="widened"):
        widened_head_state(wide, 64)

    trainer = Trainer(TrainConfig(out=tmp_path, head_width=96, threads=1), pretrained=False)
    trainer.init_from(state)
    batch, target = _real_crop_batch(5)
    trainer.train_step(batch, torch.from_numpy(target[None, None].astype(np.float32)))
    outgoing = trainer.net.head[2].weight[:64, 64:]  # old channels reading the new ones
    assert float(outgoing.abs().max()) > 0


def _added_output_layer(net, part: str):
    """The zero-initialised layer through which ``part`` reaches the head."""
    return net.context[2] if part == "global_context" else net.deep_in


@pytest.mark.parametrize("part", ["global_context", "deep_stage"])
def test_an_added_part_starts_from_the_shipped_checkpoint_exactly_and_then_learns(
    tmp_path: Path, part: str
) -> None:
    """``--global-context`` / ``--deep-stage`` with ``--init-from`` the committed checkpoint:
    the same density on a real PETS frame at the start (720 px high, so the deep stage's
    stride-16 input has an odd height), in torch and in the exported ONNX; a training step
    moves the part's zero output layer, after which the part changes the count."""
    import cv2
    import onnxruntime as ort

    from crowdwatch.estimators.density import prepare_input
    from crowdwatch.training.export import export_onnx, load_checkpoint_net
    from crowdwatch.training.model import DensityNet, deep_stage_state, global_context_state
    from crowdwatch.training.train import TrainConfig, Trainer

    add_part = {"global_context": global_context_state, "deep_stage": deep_stage_state}[part]
    state = torch.load(
        Path("models/training/density_last.pt"), map_location="cpu", weights_only=False
    )
    shipped = DensityNet().eval()
    shipped.load_state_dict(state["ema"])
    torch.save({"model": add_part(state["ema"]), "step": 1}, tmp_path / "part.pt")
    net = load_checkpoint_net(tmp_path / "part.pt")
    assert _added_output_layer(net, part) is not None
    frame = cv2.resize(cv2.VideoCapture("sample_videos/pets2009_s2l1.mp4").read()[1], (960, 720))
    x = torch.from_numpy(prepare_input(frame, 1280))
    assert x.shape[-2] // 16 % 2 == 1
    with torch.no_grad():
        expected = shipped(x).numpy()
        np.testing.assert_allclose(net(x).numpy(), expected, rtol=1e-5, atol=1e-7)
    session = ort.InferenceSession(
        str(export_onnx(net, tmp_path / "part.onnx")), providers=["CPUExecutionProvider"]
    )
    (density,) = session.run(None, {"image": x.numpy()})
    np.testing.assert_allclose(density, expected, rtol=1e-4, atol=1e-6)

    trainer = Trainer(TrainConfig(out=tmp_path, threads=1, **{part: True}), pretrained=False)
    trainer.init_from(state)
    layer = _added_output_layer(trainer.net, part)
    assert any(p is layer.weight for p in trainer.optimizer.param_groups[1]["params"])
    batch, target = _real_crop_batch(5)
    trainer.train_step(batch, torch.from_numpy(target[None, None].astype(np.float32)))
    assert float(layer.weight.detach().abs().max()) > 0
    trainer.net.eval()
    with torch.no_grad():
        trained = float(trainer.net(x).sum())
        layer.weight.zero_()
        layer.bias.zero_()
        # The part now moves the count: without its output the count differs.
        assert float(trainer.net(x).sum()) != pytest.approx(trained, rel=1e-6)


def test_head_spacing_is_the_mean_distance_to_the_three_nearest_heads() -> None:
    from crowdwatch.training.data import head_spacing

    grid = np.array([[x, y] for y in range(0, 100, 10) for x in range(0, 100, 10)], np.float32)
    spacing = head_spacing(grid)
    inner = (grid[:, 0] > 0) & (grid[:, 0] < 90) & (grid[:, 1] > 0) & (grid[:, 1] < 90)
    np.testing.assert_allclose(spacing[inner], 10.0, rtol=1e-6)  # 4 neighbours at 10 px
    with pytest.raises(ValueError, match="more than 3 heads"):
        head_spacing(grid[:3])


def test_adaptive_targets_spread_each_head_by_its_spacing_and_keep_one_per_head() -> None:
    from crowdwatch.training.data import adaptive_density_target

    # A far crowd (heads 8 px apart) and near people (96 px apart) in one 256x320 crop.
    far = np.array([[24 + 8 * i, 24 + 8 * j] for i in range(6) for j in range(6)], np.float32)
    near = np.array([[180 + 96 * (i % 2), 60 + 96 * (i // 2)] for i in range(4)], np.float32)
    points = np.concatenate([far, near, [[-50.0, 10.0]]])  # one neighbour outside the crop
    fixed = density_target(points, 256, 320, sigma_cells=1.0)
    adaptive = adaptive_density_target(points, 256, 320, spread=0.3, fallback_sigma_cells=1.0)
    assert adaptive.sum() == pytest.approx(fixed.sum(), rel=1e-5) and fixed.sum() == 40
    # Near heads (sigma 0.3 x 96 / 8 = 3.6 -> 4 cells) are spread wider: a lower peak.
    near_cells = adaptive[:, 12:]
    assert near_cells.max() < 0.5 * fixed[:, 12:].max()
    assert near_cells.sum() == pytest.approx(4.0, rel=0.05)
    few = adaptive_density_target(near[:3], 256, 320, spread=0.3, fallback_sigma_cells=1.0)
    np.testing.assert_array_equal(few, density_target(near[:3], 256, 320, 1.0))


def test_the_spacing_head_learns_the_heads_spacing_and_leaves_the_density_alone(
    tmp_path: Path,
) -> None:
    """``--deep-stage --spacing-weight``: on real ShanghaiTech B crops the spacing error falls
    over a few steps from the committed checkpoint, while the network's density output and its
    ONNX export are those of a network without the (training-only) spacing head."""
    from crowdwatch.training.data import random_crop_with_points
    from crowdwatch.training.export import export_onnx, load_checkpoint_net
    from crowdwatch.training.train import TrainConfig, Trainer

    sample = _real_sample()
    crop_config = CropConfig(height=256, width=320, min_scale=1.0, max_scale=1.0)
    pairs = [random_crop_with_points(sample, np.random.default_rng(seed), crop_config)
             for seed in range(2)]  # fmt: skip
    crops, points = [crop for crop, _ in pairs], [heads for _, heads in pairs]
    batch = torch.from_numpy(to_network_batch(crops))
    target = torch.from_numpy(np.stack([density_target(p, 256, 320, 1.0) for p in points])[:, None])
    state = torch.load(
        Path("models/training/density_last.pt"), map_location="cpu", weights_only=False
    )
    config = TrainConfig(out=tmp_path, deep_stage=True, spacing_weight=1.0, threads=1)
    trainer = Trainer(config, pretrained=False)
    trainer.init_from(state)
    errors = []
    for _ in range(6):
        trainer.train_step(batch, target, points)
        errors.append(trainer.loss_parts["spacing"])
    assert errors[-1] < 0.8 * errors[0]

    torch.save({"model": trainer.net.state_dict(), "step": 1}, tmp_path / "spacing.pt")
    net = load_checkpoint_net(tmp_path / "spacing.pt")
    assert net.spacing is not None
    plain = {k: v for k, v in trainer.net.state_dict().items() if not k.startswith("spacing.")}
    torch.save({"model": plain, "step": 1}, tmp_path / "plain.pt")
    without = load_checkpoint_net(tmp_path / "plain.pt")
    assert without.spacing is None
    with torch.no_grad():
        expected = without(batch[:1]).numpy()
        np.testing.assert_allclose(net(batch[:1]).numpy(), expected, rtol=1e-6)
    import onnxruntime as ort

    session = ort.InferenceSession(
        str(export_onnx(net, tmp_path / "spacing.onnx")), providers=["CPUExecutionProvider"]
    )
    assert [o.name for o in session.get_outputs()] == ["density"]
    (density,) = session.run(None, {"image": batch[:1].numpy()})
    np.testing.assert_allclose(density, expected, rtol=1e-4, atol=1e-6)


def test_the_spacing_gain_calibrates_the_count_by_scale_linearly_and_exports(
    tmp_path: Path,
) -> None:
    """``SpacingGain``: gains of 1 leave the density as it was (to float rounding); on a real
    image the count with any gains is ``gain_features . gains`` (the fit's linear model), in
    PyTorch and in the exported ONNX; the hat weights interpolate linearly between knots; and
    the ridge fit recovers known gains."""
    import onnxruntime as ort

    from crowdwatch.estimators.density import prepare_input
    from crowdwatch.training.export import export_onnx, load_checkpoint_net
    from crowdwatch.training.model import SPACING_GAIN_KNOTS_PX, SpacingGain, deep_stage_state
    from crowdwatch.training.recalibrate import fit_gains, gain_features

    gain = SpacingGain()
    log_knots = np.log(np.array(SPACING_GAIN_KNOTS_PX, np.float32))
    between = torch.tensor((log_knots[1] + log_knots[2]) / 2).view(1, 1, 1, 1)
    weights = gain.hat_weights(torch.cat([between, torch.tensor(np.log(500.0)).view(1, 1, 1, 1)]))
    np.testing.assert_allclose(weights[0, :, 0, 0].numpy(), [0, 0.5, 0.5, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(weights[1, :, 0, 0].numpy(), [0, 0, 0, 0, 0, 1], atol=1e-6)

    state = torch.load(
        Path("models/training/density_last.pt"), map_location="cpu", weights_only=False
    )
    weights_v1 = deep_stage_state(state["ema"])
    torch.manual_seed(0)  # a spacing head whose prediction varies over the picture
    weights_v1["spacing.weight"] = 0.05 * torch.randn(1, 160, 1, 1)
    weights_v1["spacing.bias"] = torch.tensor([np.log(20.0)], dtype=torch.float32)
    torch.save({"model": weights_v1, "step": 1}, tmp_path / "plain.pt")
    plain = load_checkpoint_net(tmp_path / "plain.pt")
    image = _real_sample().image
    x = torch.from_numpy(prepare_input(image, 1280))
    features = gain_features(plain, gain, image, max_side=1280)
    with torch.no_grad():
        count = float(plain(x).sum())
    assert features.sum() == pytest.approx(count, rel=1e-5)
    assert np.count_nonzero(features > 0.01 * count) >= 2  # the picture spans several scales

    gains = np.array([0.7, 0.9, 1.1, 1.3, 1.2, 1.0], np.float32)
    with_gain = dict(weights_v1)
    with_gain["spacing_gain.log_knots"] = torch.from_numpy(log_knots)
    with_gain["spacing_gain.gains"] = torch.from_numpy(gains)
    torch.save({"model": with_gain, "step": 1}, tmp_path / "gain.pt")
    calibrated = load_checkpoint_net(tmp_path / "gain.pt")
    assert calibrated.spacing_gain is not None
    with torch.no_grad():
        density = calibrated(x).numpy()
    assert density.sum() == pytest.approx(float(features @ gains), rel=1e-5)
    calibrated.spacing_gain.gains.fill_(1.0)
    with torch.no_grad():
        np.testing.assert_allclose(calibrated(x).numpy(), plain(x).numpy(), rtol=1e-6)
    calibrated.spacing_gain.gains.copy_(torch.from_numpy(gains))
    session = ort.InferenceSession(
        str(export_onnx(calibrated, tmp_path / "gain.onnx")), providers=["CPUExecutionProvider"]
    )
    (exported,) = session.run(None, {"image": x.numpy()})
    np.testing.assert_allclose(exported, density, rtol=1e-4, atol=1e-6)

    rng = np.random.default_rng(1)
    scales = rng.uniform(0, 50, size=(200, 6))
    known = np.array([0.8, 1.0, 1.2, 1.4, 0.9, 1.0])
    fitted = fit_gains(scales, scales @ known, ridge=1e-6)
    np.testing.assert_allclose(fitted, known, rtol=1e-6)


def test_the_quantiser_keeps_the_density_layer_float_in_every_exported_shape(
    tmp_path: Path,
) -> None:
    """The layer that makes the count stays float whatever the export named it: the shipped
    file's ``/head/head.8/Conv`` and the ``/head.8/Conv`` of a deep-stage export (whose head is
    run in two parts); with a spacing gain, the gain's nodes too, so the output is never
    quantised. (Run 17's export failed to quantise before names were matched by their end.)"""
    pytest.importorskip("onnxruntime.quantization")
    from crowdwatch.training.export import export_onnx
    from crowdwatch.training.model import DensityNet
    from crowdwatch.training.quantize import KEEP_FLOAT, float_nodes

    assert float_nodes(Path("models/crowd_density.onnx"), KEEP_FLOAT) == ["/head/head.8/Conv"]
    deep = export_onnx(DensityNet(deep_stage=True).eval(), tmp_path / "deep.onnx")
    assert float_nodes(deep, KEEP_FLOAT) == ["/head.8/Conv"]
    gained = DensityNet(deep_stage=True, spacing_head=True, spacing_gain=True).eval()
    kept = float_nodes(export_onnx(gained, tmp_path / "gain.onnx"), KEEP_FLOAT)
    assert "/head.8/Conv" in kept and "/spacing/Conv" in kept
    assert "/spacing_gain/Mul_1" in kept  # density x gain: the output


def test_the_zip_loss_with_an_mse_term_adds_the_squared_error_of_the_zip_mean() -> None:
    from crowdwatch.training.losses import mse_density_loss
    from crowdwatch.training.model import DensityNet, mean_density
    from crowdwatch.training.train import TrainConfig, training_loss

    batch, target = _real_crop_batch(3)
    target_t = torch.from_numpy(target[None, None].astype(np.float32))
    points = [np.argwhere(target > 0)[:, ::-1].astype(np.float32) * 8 + 4]
    net = DensityNet(zero_inflated=True)
    plain = TrainConfig(out=Path("."), loss="zip", ot_weight=0.0)
    with_mse = TrainConfig(out=Path("."), loss="zip", ot_weight=0.0, mse_weight=2.0)
    with torch.no_grad():
        base, base_parts = training_loss(net, batch, target=target_t, points=points, config=plain)
        total, parts = training_loss(net, batch, target=target_t, points=points, config=with_mse)
        squared = mse_density_loss(mean_density(*net.parts(batch)), target_t, count_weight=0.0)
    assert base_parts["ot"] == 0.0 and "mse" not in base_parts
    assert parts["mse"] == pytest.approx(float(squared), rel=1e-5)
    assert float(total) == pytest.approx(float(base) + 2.0 * float(squared), rel=1e-5)


def test_degraded_crops_keep_their_heads_and_lose_high_frequencies_or_blocks() -> None:
    from crowdwatch.training.data import degrade

    sample = _real_sample()
    plain = CropConfig(height=256, width=320, min_scale=1.0, max_scale=1.0)
    degraded = CropConfig(height=256, width=320, min_scale=1.0, max_scale=1.0,
                          degrade_probability=1.0)  # fmt: skip
    crop, target = random_crop(sample, np.random.default_rng(5), plain)
    worse, worse_target = random_crop(sample, np.random.default_rng(5), degraded)
    assert worse.shape == crop.shape and worse.dtype == np.uint8
    np.testing.assert_array_equal(worse_target, target)  # the heads are where they were
    assert np.abs(worse.astype(int) - crop.astype(int)).mean() > 0.5
    import cv2

    def sharpness(image: np.ndarray) -> float:
        return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_32F).var())

    blurred = [degrade(crop, np.random.default_rng(seed)) for seed in range(8)]
    assert min(sharpness(b) for b in blurred) < 0.8 * sharpness(crop)
