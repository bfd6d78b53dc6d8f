"""Training samples: images held in memory, random augmented crops and stride-8 density targets.

Example:
    >>> pool = load_training_pool(data_root())                            # doctest: +SKIP
    >>> image, target = random_crop(pool[0], np.random.default_rng(0))    # doctest: +SKIP
    >>> image.shape, target.shape                                         # doctest: +SKIP
    ((384, 512, 3), (48, 64))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from crowdwatch.evaluation.datasets import annotated_samples, select_split

STRIDE = 8
# (dataset reader, folder under the data root) of every training source.
TRAIN_SOURCES = (
    ("shanghaitech", "shanghaitech/part_B_train"),
    ("shanghaitech", "shanghaitech/part_A_train"),
    ("brt", "beijing_brt/train"),
)
MAX_STORED_SIDE = 1280


@dataclass(frozen=True)
class TrainImage:
    """A decoded BGR image and its 0-based head points (N, 2) x, y."""

    source: str
    name: str
    image: np.ndarray
    points: np.ndarray


@dataclass(frozen=True)
class CropConfig:
    """Augmentation settings for one training crop."""

    height: int = 384
    width: int = 512
    min_scale: float = 0.7
    max_scale: float = 1.3
    sigma_cells: float = 1.0  # Gaussian spread of each head in the stride-8 target
    grey_probability: float = 0.1
    # With this probability a crop is degraded as a camera's stream degrades it: re-encoded as a
    # JPEG of quality 30 - 90 or blurred (Gaussian sigma 0.3 - 1.0 px), half and half. The v1
    # model's count follows such high-frequency content (ShanghaiTech B val MAE 10.3 -> 8.5 at
    # JPEG quality 60, 15.8 blurred at sigma 0.6): the augmentation teaches it not to.
    degrade_probability: float = 0.0


def load_training_pool(root: Path, split: str = "train") -> list[TrainImage]:
    """Decode every image of the training sources (``split`` "train" excludes the val split)."""
    pool = []
    for dataset, folder in TRAIN_SOURCES:
        items = select_split(
            dataset, root / folder, annotated_samples(dataset, root / folder), split
        )
        for item in items:
            image, points = _cap_size(item.load(), item.points)
            pool.append(TrainImage(folder, item.name, image, points))
    return pool


def _cap_size(image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scale = MAX_STORED_SIDE / max(image.shape[:2])
    if scale >= 1.0:
        return image, points
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), points * scale


def density_target(points: np.ndarray, height: int, width: int, sigma_cells: float) -> np.ndarray:
    """Stride-8 density of heads at ``points`` in an H x W crop (mass 1 per head inside it)."""
    cells_h, cells_w = height // STRIDE, width // STRIDE
    target = np.zeros((cells_h, cells_w), np.float32)
    if len(points):
        cx = np.floor(points[:, 0] / STRIDE).astype(int)
        cy = np.floor(points[:, 1] / STRIDE).astype(int)
        inside = (cx >= 0) & (cx < cells_w) & (cy >= 0) & (cy < cells_h)
        np.add.at(target, (cy[inside], cx[inside]), 1.0)
    if sigma_cells > 0 and target.any():
        total = target.sum()
        target = cv2.GaussianBlur(target, (0, 0), sigma_cells, borderType=cv2.BORDER_REFLECT)
        target *= total / max(target.sum(), 1e-6)
    return target


#: Neighbours whose mean distance is a head's spacing (the geometry-adaptive kernels' k).
SPACING_NEIGHBOURS = 3


def head_spacing(points: np.ndarray, neighbours: int = SPACING_NEIGHBOURS) -> np.ndarray:
    """Each head's spacing (N,), pixels: the mean distance to its ``neighbours`` nearest heads.

    It is the crowd's scale where the head stands (MCNN's geometry-adaptive kernels use the same
    figure): a few pixels in a far stadium crowd, tens in a near street. Needs more than
    ``neighbours`` heads; the points may lie outside the crop (an uncropped image's neighbours).
    """
    from scipy.spatial import cKDTree

    if len(points) <= neighbours:
        raise ValueError(f"head spacing needs more than {neighbours} heads, got {len(points)}")
    distances, _ = cKDTree(points).query(points, k=neighbours + 1)
    return distances[:, 1:].mean(axis=1).astype(np.float32)


#: Sigmas, in stride-8 cells, that :func:`adaptive_density_target` rounds each head's to (one
#: blur per level, not one per head).
ADAPTIVE_SIGMA_LEVELS = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)


def adaptive_density_target(
    points: np.ndarray, height: int, width: int, *, spread: float, fallback_sigma_cells: float
) -> np.ndarray:
    """:func:`density_target` with each head spread by its own size: sigma = ``spread`` x its
    spacing (mean distance to its 3 nearest heads, pixels) / 8, in cells, rounded to the nearest
    of :data:`ADAPTIVE_SIGMA_LEVELS` (MCNN's geometry-adaptive kernels, beta = ``spread``).

    A near head gets a wide blob and a far crowd's heads tight ones, so the target's cell values
    follow what a cell shows. Each head keeps mass 1 inside the crop, as in
    :func:`density_target`; with 3 heads or fewer every head gets ``fallback_sigma_cells``. The
    spacing is taken over all ``points``, those outside the crop included.
    """
    if len(points) <= SPACING_NEIGHBOURS:
        return density_target(points, height, width, fallback_sigma_cells)
    levels = np.array(ADAPTIVE_SIGMA_LEVELS)
    sigma = spread * head_spacing(points) / STRIDE
    nearest = np.abs(np.log(sigma[:, None] / levels[None, :])).argmin(axis=1)
    target = np.zeros((height // STRIDE, width // STRIDE), np.float32)
    for level in np.unique(nearest):
        target += density_target(points[nearest == level], height, width, float(levels[level]))
    return target


def random_crop(
    sample: TrainImage, rng: np.random.Generator, config: CropConfig = CropConfig()
) -> tuple[np.ndarray, np.ndarray]:
    """A randomly scaled, placed, flipped and recoloured crop (BGR uint8) and its density target."""
    crop, points = random_crop_with_points(sample, rng, config)
    return crop, density_target(points, config.height, config.width, config.sigma_cells)


def random_crop_with_points(
    sample: TrainImage, rng: np.random.Generator, config: CropConfig = CropConfig()
) -> tuple[np.ndarray, np.ndarray]:
    """A random crop (as :func:`random_crop`) and its head points (N, 2) in crop pixels.

    The points are not filtered: those outside the crop fall outside ``[0, width) x [0, height)``.
    """
    scale = rng.uniform(config.min_scale, config.max_scale)
    window_w, window_h = config.width / scale, config.height / scale
    img_h, img_w = sample.image.shape[:2]
    x0 = rng.uniform(min(0.0, img_w - window_w), max(0.0, img_w - window_w))
    y0 = rng.uniform(min(0.0, img_h - window_h), max(0.0, img_h - window_h))
    # Affine map from the image to the crop: shift to the window's corner, then scale.
    affine = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], np.float32)
    crop = cv2.warpAffine(
        sample.image,
        affine,
        (config.width, config.height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(128, 128, 128),
    )
    points = (sample.points - np.array([x0, y0], np.float32)) * scale
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
        points = np.stack([config.width - 1 - points[:, 0], points[:, 1]], axis=1)
    crop = _recolour(crop, rng, config.grey_probability)
    if config.degrade_probability and rng.random() < config.degrade_probability:
        crop = degrade(crop, rng)
    return crop, points.astype(np.float32).reshape(-1, 2)


def degrade(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``crop`` re-encoded as a JPEG of quality 30 - 90, or blurred with sigma 0.3 - 1.0 px."""
    crop = np.ascontiguousarray(crop)
    if rng.random() < 0.5:
        quality = int(rng.integers(30, 91))
        ok, encoded = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, quality])
        return cv2.imdecode(encoded, cv2.IMREAD_COLOR) if ok else crop
    return cv2.GaussianBlur(crop, (0, 0), float(rng.uniform(0.3, 1.0)))


def _recolour(crop: np.ndarray, rng: np.random.Generator, grey_probability: float) -> np.ndarray:
    """Mild brightness/contrast jitter, sometimes greyscale (ShanghaiTech A has grey images)."""
    if rng.random() < grey_probability:
        grey = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_BGR2GRAY)
        crop = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    gain = rng.uniform(0.8, 1.2)
    bias = rng.uniform(-20, 20)
    return np.clip(crop.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)


def to_network_batch(crops: list[np.ndarray]) -> np.ndarray:
    """BGR uint8 crops -> (B, 3, H, W) float32 RGB in [-1, 1]."""
    batch = np.stack(crops)[..., ::-1].astype(np.float32)
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2)) / 127.5 - 1.0
