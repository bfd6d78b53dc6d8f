"""crowdwatch's own density-map crowd counter, run with onnxruntime (no torch needed).

The network (see ``models/crowd_density.md``) maps an RGB image to a density map at stride 8
whose sum is the people count. This estimator runs frames at their native resolution up to
``max_side`` (1920: scaling a 1024x768 street scene to 0.8 raised the ShanghaiTech B validation
MAE from 17 to 23, since far heads get too small), scales larger frames down, pads to multiples
of 16, resizes the stride-8 density bilinearly to the frame's H x W renormalised to the network's
count, and takes people positions for drawing from the density's local maxima.

Example:
    >>> est = DensityEstimator()      # models/crowd_density_int8.onnx (the float one without VNNI)
    >>> result = est.estimate(cv2.imread("street.jpg"))   # doctest: +SKIP
    >>> round(result.count), result.density.shape         # doctest: +SKIP
    (118, (768, 1024))
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from crowdwatch.errors import EstimatorError
from crowdwatch.types import Anchor, Estimate

#: The int8 model, quantised from the float export (``crowdwatch.training.quantize``: 7-bit
#: weights where pairs of products could otherwise overflow 16 bits, so it counts the same on
#: every CPU), the CPU default: no validation MAE more than 1.3 % worse than the float model's
#: (``benchmarks/quantize_density.py``).
INT8_MODEL_FILE = "crowd_density_int8.onnx"
#: The float model as trained and exported; the int8 one is made from it.
FLOAT_MODEL_FILE = "crowd_density.onnx"
STRIDE = 8
INPUT_MULTIPLE = 16
DEFAULT_MAX_SIDE = 1920  # native resolution up to 1080p: downscaling loses small far heads
MIN_SIDE = 64


def models_dir() -> Path:
    """``$CROWDWATCH_MODELS`` if set, else the repository's ``models/``."""
    env = os.environ.get("CROWDWATCH_MODELS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "models"


def default_model_path() -> Path:
    """The model crowdwatch runs on the CPU: the int8 :data:`INT8_MODEL_FILE`."""
    return int8_model_path()


def int8_model_path() -> Path:
    """The int8 model, :data:`INT8_MODEL_FILE` in :func:`models_dir`."""
    return models_dir() / INT8_MODEL_FILE


def float_model_path() -> Path:
    """The float model the int8 one is quantised from: :data:`FLOAT_MODEL_FILE`."""
    return models_dir() / FLOAT_MODEL_FILE


def input_scale(height: int, width: int, max_side: int) -> float:
    """Factor that brings the longer side down to ``max_side`` (1.0 when it already fits)."""
    longest = max(height, width)
    return 1.0 if longest <= max_side else max_side / longest


def prepare_input(image_bgr: np.ndarray, max_side: int = DEFAULT_MAX_SIDE) -> np.ndarray:
    """BGR uint8 (H, W, 3) -> network input (1, 3, H', W') float32 RGB in [-1, 1].

    The image is scaled so its longer side is at most ``max_side``, then zero-padded (zero is
    mid-grey after scaling) on the bottom/right to multiples of 16.
    """
    _check_image(image_bgr)
    h, w = image_bgr.shape[:2]
    scale = input_scale(h, w, max_side)
    if scale != 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image_bgr = cv2.resize(image_bgr, size, interpolation=cv2.INTER_AREA)
    h, w = image_bgr.shape[:2]
    padded_h = -(-h // INPUT_MULTIPLE) * INPUT_MULTIPLE
    padded_w = -(-w // INPUT_MULTIPLE) * INPUT_MULTIPLE
    # Each BGR plane becomes its RGB channel as p / 127.5 - 1 in one OpenCV pass written straight
    # into the padded input (0.8 ms a 768x576 frame; cv2.dnn.blobFromImage took 4.5 - 8 ms).
    shape = (1, 3, padded_h, padded_w)
    x = (
        np.empty(shape, np.float32)
        if (padded_h, padded_w) == (h, w)
        else np.zeros(shape, np.float32)
    )
    for channel, plane in enumerate(reversed(cv2.split(image_bgr))):
        cv2.addWeighted(
            plane, 1.0 / 127.5, plane, 0.0, -1.0, dst=x[0, channel, :h, :w], dtype=cv2.CV_32F
        )
    return x


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise ValueError(f"expected a BGR image of shape (H, W, 3), got shape {shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {image.dtype}")
    if min(image.shape[:2]) < MIN_SIDE:
        raise ValueError(f"image {image.shape[1]}x{image.shape[0]} is smaller than {MIN_SIDE} px")


def density_to_frame(cells: np.ndarray, height: int, width: int) -> np.ndarray:
    """Spread a stride-8 density (covering the scaled, padded input) over an H x W frame.

    The cells are resized bilinearly (a smooth heat map rather than 8x8 blocks) and the result
    renormalised, so it sums to ``cells.sum()``.
    """
    total = float(cells.sum(dtype=np.float64))
    if total <= 0.0:
        return np.zeros((height, width), np.float32)
    frame = cv2.resize(cells.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    if cells.min() < 0:  # bilinear weights are convex: non-negative cells give a map >= 0
        np.maximum(frame, 0.0, out=frame)
    frame *= np.float32(total / max(cv2.sumElems(frame)[0], 1e-12))  # sumElems: in double
    return frame


def local_maxima(density: np.ndarray, count: float, min_value: float = 0.0) -> np.ndarray:
    """About ``round(count)`` people positions (N, 2) x, y: the density's strongest local peaks."""
    n = int(round(count))
    if n <= 0:
        return np.zeros((0, 2), np.float32)
    dilated = cv2.dilate(density, np.ones((3, 3), np.uint8))
    ys, xs = np.nonzero((density >= dilated) & (density > min_value))
    order = np.argsort(-density[ys, xs], kind="stable")[:n]
    return np.stack([xs[order], ys[order]], axis=1).astype(np.float32)


#: Whether onnxruntime's worker threads spin while they wait for work. Spinning shaves a little
#: latency off one model on an idle machine, but burns the cores that the rest of the frame's
#: analysis, decoding and the other cameras need: off by default (``CROWDWATCH_ORT_SPIN=1``).
ORT_SPINNING = os.environ.get("CROWDWATCH_ORT_SPIN", "0") == "1"


def session_options(threads: int = 2, spinning: bool | None = None, *, optimise: bool = True):
    """onnxruntime settings of the density model: every graph optimisation (fusions, constant
    folding, layout; none without ``optimise``), ``threads`` intra-op threads, one inter-op
    thread, sequential execution, and worker threads that spin only when ``spinning`` (default
    :data:`ORT_SPINNING`)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if optimise
        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    spin = ORT_SPINNING if spinning is None else spinning
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "1" if spin else "0")
    return options


#: onnxruntime execution providers per ``device``; the CPU one stays as the fallback for any
#: operator the CUDA provider lacks.
PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
}


def execution_providers(device: str) -> list[str]:
    """The onnxruntime providers that run the model on ``device`` ("cpu" or "cuda").

    Raises:
        EstimatorError: ``device`` is unknown, or is "cuda" and the installed onnxruntime has no
            CUDA provider (the ``gpu`` extra installs onnxruntime-gpu).
    """
    import onnxruntime as ort

    if device not in PROVIDERS:
        raise EstimatorError(f"unknown device {device!r}; use one of {sorted(PROVIDERS)}")
    wanted = PROVIDERS[device]
    if wanted[0] not in ort.get_available_providers():
        raise EstimatorError(
            f"device {device!r} needs onnxruntime's {wanted[0]}, which this onnxruntime "
            f"{ort.__version__} lacks: install the gpu extra (onnxruntime-gpu) on a machine with "
            "CUDA, or set estimator.device to cpu"
        )
    return wanted


class DensityEstimator:
    """Density-map crowd counter on onnxruntime; implements the ``Estimator`` protocol.

    Args:
        model_path: the ONNX model; defaults to :func:`default_model_path` (int8) on the CPU and
            :func:`float_model_path` on "cuda" (int8 QDQ graphs gain nothing there).
        threads: onnxruntime intra-op threads (CPU).
        max_side: frames whose longer side exceeds this are scaled down before the network.
        device: "cpu" (default) or "cuda" (onnxruntime's CUDA execution provider).
        optimise: onnxruntime's graph optimisations; off, an int8 file runs its quantise /
            dequantise pairs around float operators instead of fused int8 kernels (what the file
            computes, for checking the kernels against it).
    """

    name = "density"
    anchor = Anchor.HEAD  # the network was trained on head annotations
    #: An onnxruntime session runs calls from several threads at once (see SharedEstimator).
    concurrent_calls = True

    def __init__(
        self,
        model_path: Path | None = None,
        threads: int = 2,
        max_side: int = DEFAULT_MAX_SIDE,
        *,
        device: str = "cpu",
        optimise: bool = True,
    ):
        import onnxruntime as ort

        providers = execution_providers(device)
        if model_path is None:
            model_path = float_model_path() if device == "cuda" else default_model_path()
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise EstimatorError(
                f"density model {self.model_path} not found (set CROWDWATCH_MODELS to its folder)"
            )
        if max_side < MIN_SIDE:
            raise ValueError(f"max_side must be at least {MIN_SIDE}, got {max_side}")
        options = session_options(threads, optimise=optimise)
        try:
            self._session = ort.InferenceSession(str(self.model_path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises several unrelated types
            raise EstimatorError(f"cannot load density model {self.model_path}: {exc}") from exc
        self._input = self._session.get_inputs()[0].name
        self.model_file = self.model_path
        self.max_side = max_side
        self.device = device

    @property
    def batches(self) -> bool:
        """Whether the model takes several frames in one call (its batch axis is symbolic)."""
        return not isinstance(self._session.get_inputs()[0].shape[0], int)

    def cell_density(self, image_bgr: np.ndarray) -> np.ndarray:
        """The network's raw stride-8 density (H'/8, W'/8) for the scaled, padded image."""
        return self.cell_densities([image_bgr])[0]

    def cell_densities(self, images_bgr: list[np.ndarray]) -> list[np.ndarray]:
        """:meth:`cell_density` of each image; images whose network inputs have one size run
        in one call when the model :attr:`batches` (the GPU path), one by one otherwise."""
        inputs = [prepare_input(image, self.max_side) for image in images_bgr]
        cells: list[np.ndarray | None] = [None] * len(inputs)
        for indices in _same_shape_groups(inputs, together=self.batches):
            batch = (
                inputs[indices[0]]
                if len(indices) == 1
                else np.concatenate([inputs[i] for i in indices])
            )
            (out,) = self._session.run(None, {self._input: batch})
            for row, i in enumerate(indices):
                cells[i] = np.maximum(out[row, 0], 0.0)
        return cells

    def estimate(self, image: np.ndarray) -> Estimate:
        """Density map at the frame's H x W summing to the count, and peak positions."""
        return self.estimate_batch([image])[0]

    def estimate_batch(self, images: list[np.ndarray]) -> list[Estimate]:
        """:meth:`estimate` of each image, same-sized ones in one model call where it batches;
        every estimate is exactly the one :meth:`estimate` gives its image alone."""
        return [
            self._from_cells(cells, *image.shape[:2])
            for image, cells in zip(images, self.cell_densities(images), strict=True)
        ]

    def _from_cells(self, cells: np.ndarray, height: int, width: int) -> Estimate:
        cells = _crop_padding(cells, height, width, self.max_side)
        density = density_to_frame(cells, height, width)
        points = _cell_peaks(cells, height, width)
        return Estimate(density=density, points=points, anchor=self.anchor)


def _same_shape_groups(inputs: list[np.ndarray], *, together: bool) -> list[list[int]]:
    """Indices of ``inputs`` grouped by shape (in order of first appearance) when ``together``,
    else one index per group."""
    if not together:
        return [[i] for i in range(len(inputs))]
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, x in enumerate(inputs):
        groups.setdefault(x.shape, []).append(i)
    return list(groups.values())


def _crop_padding(cells: np.ndarray, height: int, width: int, max_side: int) -> np.ndarray:
    """Cells covering the image; the mass on padding cells is folded back by rescaling."""
    total = float(cells.sum(dtype=np.float64))
    scale = input_scale(height, width, max_side)
    valid_h = max(1, -(-round(height * scale) // STRIDE))
    valid_w = max(1, -(-round(width * scale) // STRIDE))
    kept = cells[:valid_h, :valid_w]
    kept_sum = float(kept.sum(dtype=np.float64))
    if kept_sum > 0:
        kept = kept * np.float32(total / kept_sum)
    return np.ascontiguousarray(kept, dtype=np.float32)


def _cell_peaks(cells: np.ndarray, height: int, width: int) -> np.ndarray:
    """People positions from the stride-8 density's local maxima, in frame pixels."""
    peaks = local_maxima(cells, float(cells.sum(dtype=np.float64)), min_value=0.05)
    if len(peaks) == 0:
        return peaks
    sy = height / cells.shape[0]
    sx = width / cells.shape[1]
    return np.stack([(peaks[:, 0] + 0.5) * sx, (peaks[:, 1] + 0.5) * sy], axis=1).astype(np.float32)
