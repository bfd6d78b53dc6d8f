"""Several cameras' frames in one model call (the GPU path), run here on the CPU provider:
batched estimates equal lone ones, the engine batches cameras that tick together, a bad frame
fails alone, and asking for CUDA without it is one clear error."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from streams import small_clip

from crowdwatch.config import load_config
from crowdwatch.engine import BatchingEstimator, Engine, EngineOptions, share_estimator
from crowdwatch.engine.worker import SharedEstimator
from crowdwatch.estimators import EstimatorConfig
from crowdwatch.estimators.base import EstimatorError
from crowdwatch.estimators.density import DensityEstimator
from crowdwatch.paths import sample_video
from crowdwatch.store import open_store

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(sample_video()))
    images = [capture.read()[1] for _ in range(40)][::10]
    capture.release()
    return images


@pytest.fixture(scope="module")
def model() -> DensityEstimator:
    return DensityEstimator(threads=1)


def _same(a, b) -> None:
    np.testing.assert_array_equal(a.density, b.density)
    np.testing.assert_array_equal(a.points, b.points)


def test_the_shipped_models_take_a_batch_and_give_each_frame_its_lone_estimate(
    frames, model
) -> None:
    substream = cv2.resize(frames[0], (640, 360), interpolation=cv2.INTER_AREA)
    images = [frames[0], substream, frames[1], frames[2], frames[3]]
    assert model.batches  # the shipped files have a symbolic batch axis
    batched = model.estimate_batch(images)
    for image, estimate in zip(images, batched, strict=True):
        assert estimate.density.shape == image.shape[:2]
        _same(estimate, model.estimate(image))
    assert DensityEstimator(model_path=REPO / "models" / "crowd_density.onnx").batches


def test_cameras_calling_together_share_one_model_call_and_a_bad_frame_fails_alone(
    frames, model
) -> None:
    batching = BatchingEstimator(model, max_batch=8, wait_s=0.5)
    assert (batching.name, batching.anchor) == (model.name, model.anchor)
    images = [*frames, np.zeros((100, 100), np.uint8)]  # the last one is not a BGR frame
    results: dict[int, object] = {}
    start = threading.Barrier(len(images))

    def call(index: int) -> None:
        start.wait()
        try:
            results[index] = batching.estimate(images[index])
        except ValueError as exc:
            results[index] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(images))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    batching.close()
    assert max(batching.batch_sizes) > 1
    for index, image in enumerate(frames):
        _same(results[index], model.estimate(image))
    assert "BGR image" in str(results[len(frames)])
    with pytest.raises(RuntimeError, match="closed"):
        batching.estimate(frames[0])


def test_the_engine_shares_a_batching_model_only_when_max_batch_asks_for_it(model) -> None:
    batched = share_estimator(EstimatorConfig(max_batch=4), cameras=4, estimator=model)
    assert isinstance(batched, BatchingEstimator) and batched.max_batch == 4
    batched.close()
    plain = share_estimator(EstimatorConfig(), cameras=4, estimator=model)
    assert isinstance(plain, SharedEstimator)
    with pytest.raises(ValueError, match="density model"):
        EstimatorConfig(kind="ssd", device="cuda")


def test_batched_cameras_tick_together_and_their_frames_share_calls(
    sample_clip: Path, tmp_path: Path
) -> None:
    clip = small_clip(sample_clip, tmp_path / "clip.mp4", seconds=10)
    cameras = [{"name": f"cam{i}", "source": str(clip), "analysis_fps": 2.0} for i in range(4)]
    config_path = tmp_path / "event.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "name": "gpu-event",
                "estimator": {"max_batch": 2, "batch_wait_ms": 150},
                "cameras": cameras,
            }
        )
    )
    store = open_store(tmp_path / "store.db")
    engine = Engine(load_config(config_path), store, EngineOptions())
    engine.start()
    try:
        workers = [engine.workers[f"cam{i}"] for i in range(4)]
        # Cameras 0 and 1 are one batch, 2 and 3 the next, half a period later.
        assert [w.tick_phase_s() for w in workers] == pytest.approx([0.0, 0.0, 0.25, 0.25])
        shared = workers[0].estimator
        assert isinstance(shared, BatchingEstimator)
        started = time.monotonic()
        while not all(w.stats.analysed >= 4 for w in workers):
            assert time.monotonic() - started < 60, "cameras did not analyse"
            time.sleep(0.1)
    finally:
        engine.stop()
    assert all(len(store.metrics(f"cam{i}")) >= 4 for i in range(4))
    assert 2 in shared.batch_sizes


def test_a_cuda_device_without_onnxruntime_gpu_is_one_clear_error(
    sample_clip: Path, tmp_path: Path
) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(EstimatorError, match="onnxruntime-gpu"):
        DensityEstimator(device="cuda")
    config = tmp_path / "event.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "gpu-event",
                "estimator": {"device": "cuda"},
                "cameras": [{"name": "plaza", "source": str(sample_clip)}],
            }
        )
    )
    run = subprocess.run(
        [sys.executable, "-m", "crowdwatch.cli", "analyze", "--config", str(config),
         "--out", str(tmp_path / "out"), "--max-frames", "2"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "CUDAExecutionProvider" in errors[0], run.stderr
