"""The shipped density models (crowd_density_int8.onnx, quantised from crowd_density.onnx)
on real images, and its export path.

Real data comes from ``$CROWDWATCH_DATA`` (default ``../shared/data``); tests needing it skip
cleanly when it is absent. The model itself ships in the repository, so it always loads offline.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from crowdwatch.errors import EstimatorError
from crowdwatch.estimators.base import Estimator
from crowdwatch.estimators.density import (
    DensityEstimator,
    default_model_path,
    density_to_frame,
    float_model_path,
    int8_model_path,
    local_maxima,
    prepare_input,
)
from crowdwatch.evaluation.datasets import data_root, iter_dataset, load_val_split, pets_frames
from crowdwatch.paths import sample_video

# Stated tolerance for real images: the mean count over five ShanghaiTech B validation images
# within 25 % of the truth, and PETS frames (2 - 8 people) within 2.5 people on average.
SHB_RELATIVE_TOLERANCE = 0.25
PETS_ABS_TOLERANCE = 2.5


@pytest.fixture(scope="module")
def estimator() -> DensityEstimator:
    return DensityEstimator()


@pytest.fixture(scope="module")
def street_image() -> np.ndarray:
    """A real 1024x768 street scene, or a real PETS frame when ShanghaiTech is absent."""
    path = data_root() / "shanghaitech/part_B_train/images/IMG_1.jpg"
    image = cv2.imread(str(path))
    if image is None:
        frames = _pets_frames(1)
        image = cv2.resize(frames[0][1], (1024, 768))
    return image


def _pets_frames(n: int) -> list[tuple[str, np.ndarray, float]]:
    folder = data_root() / "pets2009_vtest"
    if not (folder / "vtest.avi").is_file():
        pytest.skip(f"PETS clip absent under {folder}")
    return list(pets_frames(folder, limit=n))


def test_shipped_model_loads_offline_and_is_small() -> None:
    path = default_model_path()
    assert path.is_file(), f"{path} must ship with the repository"
    assert path.stat().st_size < 6_000_000
    estimator = DensityEstimator()
    assert isinstance(estimator, Estimator)
    assert estimator.name == "density"


def test_int8_model_is_the_default_and_counts_as_the_float_model(street_image) -> None:
    """Both ship; int8 is the CPU default and counts within a few per cent of float on real
    scenes, dense and sparse (the validation split's MAEs: benchmarks/quantize_density.py)."""
    int8, floating = DensityEstimator(int8_model_path()), DensityEstimator(float_model_path())
    assert int8.model_path.name == "crowd_density_int8.onnx"
    assert int8.model_path.stat().st_size < floating.model_path.stat().st_size / 2
    assert DensityEstimator().model_path == int8.model_path
    dense = (int8.estimate(street_image).count, floating.estimate(street_image).count)
    assert dense[0] == pytest.approx(dense[1], rel=0.03), dense
    frames = _pets_frames(200)[::50]
    sparse = [(int8.estimate(f).count, floating.estimate(f).count) for _, f, _ in frames]
    assert all(abs(a - b) <= 0.6 for a, b in sparse), sparse


def test_int8_kernels_compute_what_the_file_says_on_this_cpu(street_image) -> None:
    """onnxruntime's fused int8 kernels give the count of the file's own arithmetic (its
    quantise / dequantise pairs around float operators, graph optimisations off) on whatever CPU
    runs the test. Without VNNI, x86 kernels sum u8 x s8 products in saturating 16-bit pairs;
    the 7-bit weights keep every pair in range (the 8-bit file shipped before read ShanghaiTech B
    val 12.9 instead of 9.5 on such a CPU)."""
    fused = DensityEstimator(int8_model_path())
    plain = DensityEstimator(int8_model_path(), optimise=False)
    dense = fused.estimate(street_image).count, plain.estimate(street_image).count
    assert dense[0] == pytest.approx(dense[1], rel=0.005), dense


def test_missing_model_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(EstimatorError, match="nothing.onnx"):
        DensityEstimator(tmp_path / "nothing.onnx")


def test_density_map_sums_to_the_network_count(estimator, street_image) -> None:
    cells = estimator.cell_density(street_image)
    result = estimator.estimate(street_image)
    assert result.density.shape == street_image.shape[:2]
    assert result.density.dtype == np.float32
    assert result.density.min() >= 0.0
    assert result.count == pytest.approx(float(cells.sum()), rel=1e-4)
    # Peaks are for drawing: at most one per person, and each on the density's mass.
    assert 0 < len(result.points) <= round(result.count) + 1
    xs, ys = result.points[:, 0].astype(int), result.points[:, 1].astype(int)
    assert (result.density[ys, xs] > 0).all()


@pytest.mark.parametrize(
    "size",
    [(640, 360), (360, 640), (1024, 768), (768, 1024), (1920, 1080), (1080, 1920), (771, 577)],
)
def test_any_size_and_orientation(estimator, street_image, size) -> None:
    image = cv2.resize(street_image, size)
    result = estimator.estimate(image)
    assert result.density.shape == (size[1], size[0])
    assert np.isfinite(result.count) and result.count > 0
    if len(result.points):
        assert (result.points[:, 0] < size[0]).all() and (result.points[:, 1] < size[1]).all()


def test_rejects_bad_input(estimator) -> None:
    with pytest.raises(ValueError, match="shape"):
        estimator.estimate(np.zeros((100, 100), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        estimator.estimate(np.zeros((100, 100, 3), np.float32))


def test_real_shanghaitech_b_val_images_within_tolerance(estimator) -> None:
    folder = data_root() / "shanghaitech/part_B_train"
    if not folder.is_dir():
        pytest.skip(f"ShanghaiTech B absent under {folder}")
    samples = list(iter_dataset("shanghaitech", folder, split="val", limit=5))
    predicted = sum(estimator.estimate(image).count for _, image, _ in samples)
    truth = sum(gt for _, _, gt in samples)
    assert abs(predicted - truth) <= SHB_RELATIVE_TOLERANCE * truth, (predicted, truth)


def test_real_pets_frames_within_tolerance(estimator) -> None:
    frames = _pets_frames(300)[::60]
    errors = [abs(estimator.estimate(frame).count - gt) for _, frame, gt in frames]
    assert np.mean(errors) <= PETS_ABS_TOLERANCE, errors


def test_val_split_is_disjoint_from_training_pool() -> None:
    from crowdwatch.training.data import TRAIN_SOURCES

    split = load_val_split()
    assert sorted(split) == sorted(folder for _, folder in TRAIN_SOURCES)
    assert [len(split[k]) for k in sorted(split)] == [40, 30, 50]


def test_prepare_input_pads_to_multiples_of_16_and_scales_large_frames() -> None:
    x = prepare_input(np.full((361, 641, 3), 255, np.uint8), max_side=1280)
    assert x.shape == (1, 3, 368, 656)
    assert x[0, :, :361, :641].min() == pytest.approx(1.0)
    assert np.all(x[0, :, 361:, :] == 0.0)  # padding is mid-grey
    big = prepare_input(np.zeros((1080, 1920, 3), np.uint8), max_side=960)
    assert big.shape == (1, 3, 544, 960)


def test_prepare_input_is_the_rgb_frame_scaled_to_plus_minus_one_on_a_real_frame() -> None:
    capture = cv2.VideoCapture(str(sample_video()))
    ok, image = capture.read()
    capture.release()
    assert ok
    frame = image[:570, :761]  # pads to 576 x 768
    x = prepare_input(np.ascontiguousarray(frame))
    expected = (frame[..., ::-1].astype(np.float64).transpose(2, 0, 1) - 127.5) / 127.5
    assert x.shape == (1, 3, 576, 768) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, :, :570, :761], expected, atol=1e-6)
    assert not np.any(x[0, :, 570:, :]) and not np.any(x[0, :, :, 761:])


def test_density_to_frame_keeps_mass_and_local_maxima_find_peaks() -> None:
    cells = np.zeros((6, 8), np.float32)
    cells[1, 2], cells[4, 6] = 1.0, 2.0
    frame = density_to_frame(cells, 45, 61)
    assert frame.shape == (45, 61)
    assert frame.sum() == pytest.approx(3.0, rel=1e-5)
    peaks = local_maxima(cells, 2.0)
    assert peaks.tolist() == [[6.0, 4.0], [2.0, 1.0]]


def test_onnx_export_matches_pytorch(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from crowdwatch.training.export import export_onnx
    from crowdwatch.training.model import DensityNet

    torch.manual_seed(0)
    net = DensityNet().eval()
    path = export_onnx(net, tmp_path / "net.onnx")
    estimator = DensityEstimator(path)
    image = np.random.default_rng(1).integers(0, 255, (200, 300, 3), dtype=np.uint8)
    with torch.no_grad():
        expected = net(torch.from_numpy(prepare_input(image))).numpy()[0, 0]
    np.testing.assert_allclose(estimator.cell_density(image), expected, rtol=1e-4, atol=1e-5)


def test_shipped_onnx_is_the_committed_checkpoints_weights(street_image) -> None:
    """The float ONNX file (which the int8 one is quantised from) and the training framework give
    the same density for the committed weights."""
    torch = pytest.importorskip("torch")
    from crowdwatch.training.model import DensityNet

    checkpoint = Path(__file__).resolve().parents[1] / "models/training/density_last.pt"
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    net = DensityNet().eval()
    net.load_state_dict(state["ema"])  # the shipped weights are the moving average
    image = cv2.resize(street_image, (640, 480))
    with torch.no_grad():
        expected = net(torch.from_numpy(prepare_input(image))).numpy()[0, 0]
    actual = DensityEstimator(float_model_path()).cell_density(image)
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() < 1e-4
    assert float(actual.sum()) == pytest.approx(float(expected.sum()), rel=1e-4)


def test_coco_backbone_transfer_matches_the_tensorflow_graph() -> None:
    torch = pytest.importorskip("torch")
    from crowdwatch.training.model import TF_PREFIX, build_pretrained_net, load_ssd_net

    net = build_pretrained_net(deep_stage=True).eval()  # its low and high are the plain trunk
    rng = np.random.default_rng(2)
    image = cv2.GaussianBlur(rng.integers(0, 255, (160, 224, 3), dtype=np.uint8), (5, 5), 2)
    ssd = load_ssd_net()
    blob = cv2.dnn.blobFromImage(image, 1.0, (224, 160), swapRB=True)  # graph scales to [-1, 1]
    x = torch.from_numpy(prepare_input(image, max_side=4096))
    with torch.no_grad():
        low = net.low(x)
        high = net.high(low)
        ours = {
            "expanded_conv_5/add": low.numpy(),
            "expanded_conv_12/add": high.numpy(),
            "expanded_conv_15/add": net.deep(high).numpy(),  # the stride-32 stage
        }
    for layer, features in ours.items():
        ssd.setInput(blob)
        reference = ssd.forward(TF_PREFIX + layer)
        assert reference.shape == features.shape
        np.testing.assert_allclose(features, reference, atol=1e-3 * np.abs(reference).max())


def test_evaluate_reports_mae_rmse_and_speed_on_real_sets(estimator) -> None:
    from crowdwatch.evaluation.evaluate import evaluate

    folder = data_root() / "beijing_brt/train"
    if not folder.is_dir():
        pytest.skip(f"Beijing-BRT absent under {folder}")
    seen: list[tuple[str, float, float]] = []
    result = evaluate(
        "brt", folder, estimator, split="val", limit=4, progress=lambda *a: seen.append(a)
    )
    assert result.images == 4 and len(seen) == 4
    errors = np.array([pred - gt for _, pred, gt in seen])
    assert result.mae == pytest.approx(np.abs(errors).mean())
    assert result.mse == pytest.approx(np.sqrt((errors**2).mean()))
    assert result.mse >= result.mae and result.ms_per_image > 0
    assert seen[0][0] in load_val_split()["beijing_brt/train"]


def test_dataset_readers_convert_matlab_points_and_pets_counts() -> None:
    from crowdwatch.evaluation.datasets import pets_counts, shanghaitech_images

    root = data_root()
    if not (root / "pets2009_vtest/vtest_counts.csv").is_file():
        pytest.skip("PETS counts absent")
    counts = pets_counts(root / "pets2009_vtest")
    assert len(counts) == 795 and sum(counts.values()) == 4650
    items = shanghaitech_images(root / "shanghaitech/part_B_train")
    assert len(items) == 400 and items[0].name == "IMG_1.jpg"
    image = items[0].load()
    h, w = image.shape[:2]
    # Annotators clicked heads cut by the top edge slightly above it (y = -1.1 after the shift).
    assert (items[0].points >= -2).all() and items[0].points.min() < 0.0
    assert (items[0].points[:, 0] < w).all() and (items[0].points[:, 1] < h).all()
    with pytest.raises(ValueError, match="unknown dataset"):
        next(iter_dataset("ucf", root))


def test_bias_correction_takes_a_shifted_bias_back(tmp_path: Path, street_image) -> None:
    """``correct_conv_biases`` measures the mean of each quantised convolution's output as the
    next layer reads it against the float model's on training images and folds the difference
    into its bias: after the bias of one of the shipped int8 file's linear projections is pushed
    off by hand, that layer's means and the count come back. (Behind a ReLU the means it matches
    are of what passes the ReLU: a push on mostly silent channels barely shows in them.)"""
    import onnx
    from onnx import numpy_helper

    from crowdwatch.training.quantize import (
        _biased_convs,
        _calibration_feeds,
        _channel_means,
        correct_conv_biases,
    )

    if not (data_root() / "shanghaitech/part_B_train").is_dir():
        pytest.skip("the training images bias correction reads are absent")
    model = onnx.load(str(int8_model_path()))
    projection = "/high/high.5/body/body.2/body.2.0/Conv_output_0"  # linear: no ReLU after it
    conv = next(c for c in _biased_convs(model.graph) if c.output_name == projection)
    bias = next(t for t in model.graph.initializer if t.name == conv.bias_name)
    pushed = numpy_helper.to_array(bias) + np.round(2.0 / conv.bias_scale)  # +2 every channel
    bias.CopyFrom(numpy_helper.from_array(pushed.astype(np.int32), bias.name))
    shifted = tmp_path / "shifted.onnx"
    onnx.save(model, str(shifted))
    count = DensityEstimator(int8_model_path()).estimate(street_image).count
    shifted_count = DensityEstimator(shifted).estimate(street_image).count
    assert abs(shifted_count - count) > 0.05 * count  # the push is visible in the count

    feeds = list(_calibration_feeds(model, 1))
    reference = _channel_means(
        onnx.load(str(float_model_path())), [conv.output_name], feeds, optimise=True
    )[conv.output_name]

    def mean_error(path: Path) -> float:
        seen = _channel_means(onnx.load(str(path)), [conv.seen_as], feeds, optimise=False)
        return float(np.abs(seen[conv.seen_as] - reference).max())

    before = mean_error(shifted)
    assert correct_conv_biases(float_model_path(), shifted, calibration_images=1) == 43
    assert mean_error(shifted) < 0.1 * before, (before, mean_error(shifted))
    corrected_count = DensityEstimator(shifted).estimate(street_image).count
    assert corrected_count == pytest.approx(count, rel=0.015), (count, corrected_count)
