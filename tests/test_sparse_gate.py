"""The sparse-scene gate on real frames: the PETS plaza (near empty, where the density model reads
bags as people) and a dense ShanghaiTech B street (where it must change nothing)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from crowdwatch.estimators import EstimatorConfig, make_estimator
from crowdwatch.estimators.density import DensityEstimator
from crowdwatch.estimators.sparse_gate import SparseSceneGate, gate_density, scene_is_sparse
from crowdwatch.estimators.ssd import SsdPersonDetector
from crowdwatch.evaluation.datasets import data_root
from crowdwatch.paths import sample_config


@pytest.fixture(scope="module")
def gate() -> SparseSceneGate:
    return make_estimator(EstimatorConfig(kind="density", sparse_gate={}))


def test_the_config_builds_the_gate_and_refuses_it_on_detectors() -> None:
    config = EstimatorConfig(kind="density", sparse_gate={"below": 15, "agreement": 0.6})
    gate = make_estimator(config)
    assert isinstance(gate, SparseSceneGate) and (gate.below, gate.agreement) == (15, 0.6)
    assert isinstance(make_estimator(EstimatorConfig(kind="density")), DensityEstimator)
    with pytest.raises(ValidationError, match="sparse_gate gates the density model"):
        EstimatorConfig(kind="ssd", sparse_gate={})
    with pytest.raises(ValidationError, match="agreement"):
        EstimatorConfig(kind="density", sparse_gate={"agreement": 2})


def test_gating_keeps_density_near_boxes_and_caps_it_at_their_number() -> None:
    density = np.zeros((100, 200), np.float32)
    density[20:30, 20:30] = 1.5 / 100  # 1.5 "people" on a detected person
    density[80:90, 150:160] = 0.4 / 100  # a bag far from any box
    boxes = np.array([[18, 25, 34, 70]], np.float32)
    gated = gate_density(density=density, boxes=boxes)
    assert gated.dtype == np.float32 and gated.shape == density.shape
    assert gated.sum() == pytest.approx(1.0, rel=1e-5)  # capped at one detection
    assert gated[80:90, 150:160].sum() == 0  # the bag is gone
    assert gate_density(density=density * 0.5, boxes=boxes).sum() == pytest.approx(0.75, rel=1e-5)
    assert scene_is_sparse(density_count=6, detections=5, below=20, agreement=0.7)
    assert not scene_is_sparse(density_count=6, detections=3, below=20, agreement=0.7)
    assert not scene_is_sparse(density_count=25, detections=25, below=20, agreement=0.7)


def test_on_the_plaza_it_counts_closer_than_the_density_model(
    gate, clip_frames, pets_counts
) -> None:
    """40 real frames of the bundled clip (every 20th): the gated count is the density map's sum,
    never more than the detections, and closer to the truth than the density model alone."""
    density_errors, gated_errors = [], []
    for i, frame in enumerate(clip_frames):
        plain = gate.density.estimate(frame)
        gated = gate.estimate(frame)
        assert gated.count == pytest.approx(float(gated.density.sum()), rel=1e-5)
        assert gated.density.shape == frame.shape[:2]
        if gated.boxes is not None:  # gated: bounded by what the detector sees
            assert gated.count <= len(gated.boxes) + 1e-4
        density_errors.append(abs(plain.count - pets_counts[20 * i]))
        gated_errors.append(abs(gated.count - pets_counts[20 * i]))
    assert gate.gated >= 30  # the plaza is the scene it is for
    assert np.mean(gated_errors) < 0.8 * np.mean(density_errors)
    assert np.mean(gated_errors) < 1.0


def test_a_dense_street_is_left_to_the_density_model() -> None:
    path = data_root() / "shanghaitech/part_B_train/images/IMG_1.jpg"
    image = cv2.imread(str(path))
    if image is None:
        pytest.skip(f"ShanghaiTech image absent at {path}")
    density = DensityEstimator()
    gate = SparseSceneGate(density, SsdPersonDetector)
    plain, gated = density.estimate(image), gate.estimate(image)
    assert plain.count > gate.below
    assert gated.count == plain.count and np.array_equal(gated.density, plain.density)
    assert gate.gated == 0


def test_batched_estimates_are_the_lone_ones(gate, clip_frames) -> None:
    frames = clip_frames[:3]
    batched = gate.estimate_batch(frames)
    for frame, estimate in zip(frames, batched, strict=True):
        assert np.array_equal(estimate.density, gate.estimate(frame).density)


def test_analyze_runs_the_gate_from_the_config(tmp_path: Path) -> None:
    config = yaml.safe_load(sample_config().read_text())
    config["estimator"] = {"kind": "density", "sparse_gate": {"below": 20}}
    config_path = tmp_path / "gated.yaml"
    config_path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "crowdwatch.cli", "analyze",
         str(sample_config().parent / "pets2009_s2l1.mp4"), "--config", str(config_path),
         "--out", str(tmp_path / "run"), "--every", "4", "--max-frames", "12"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "done: 12 frames" in result.stdout
    summary = yaml.safe_load((tmp_path / "run" / "summary.json").read_text())
    assert summary["provenance"]["estimator"] == "density+ssd"
    config["estimator"]["sparse_gate"] = {"below": -1}
    config_path.write_text(yaml.safe_dump(config))
    bad = subprocess.run(
        [sys.executable, "-m", "crowdwatch.cli", "analyze",
         str(sample_config().parent / "pets2009_s2l1.mp4"), "--config", str(config_path),
         "--out", str(tmp_path / "bad")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "below" in bad.stderr


def test_camera_threads_share_one_gate(clip_frames) -> None:
    """The live engine's cameras call one gate from their threads: the density model side by
    side, each detector of the gate's pool one call at a time; every estimate is the one a lone
    call gives."""
    from concurrent.futures import ThreadPoolExecutor

    from crowdwatch.engine.worker import share_estimator

    config = EstimatorConfig(kind="density", sparse_gate={})
    shared = share_estimator(config, cameras=4)
    assert shared.name == "density+ssd"
    assert shared.slots == len(os.sched_getaffinity(0))  # the density model's calls side by side
    frames = clip_frames[:8]
    alone = [shared.estimate(frame).density for frame in frames]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(lambda frame: shared.estimate(frame).density, frames))
    assert all(np.array_equal(a, b) for a, b in zip(alone, together, strict=True))
