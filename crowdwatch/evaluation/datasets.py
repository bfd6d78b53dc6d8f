"""Readers for the annotated crowd datasets crowdwatch trains and evaluates on.

Layouts (as in ``../shared/data``, see its README):

* ShanghaiTech part folder: ``images/IMG_N.jpg`` and ``ground_truth/GT_IMG_N.mat``.
* Beijing-BRT folder: ``frame/NAME.jpg`` and ``ground_truth/NAME.mat``.
* PETS 2009 folder: ``vtest.avi`` and ``vtest_counts.csv`` (per-frame person counts).

Head points come back 0-based (the .mat files are MATLAB 1-based).

Example:
    >>> samples = annotated_samples("shanghaitech", data_root() / "shanghaitech/part_B_train")
    >>> samples[0].count  # doctest: +SKIP
    23
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from crowdwatch.errors import CrowdwatchError

DATASETS = ("shanghaitech", "brt", "pets")
VAL_SPLIT_FILE = Path(__file__).resolve().parents[1] / "training" / "val_split.json"


class DatasetError(CrowdwatchError, ValueError):
    """A dataset folder is missing, has the wrong layout, or a split or name is unknown."""


@dataclass(frozen=True)
class AnnotatedImage:
    """One image file and its head points (N, 2) as 0-based x, y pixels."""

    name: str
    image_path: Path
    points: np.ndarray

    @property
    def count(self) -> int:
        return int(len(self.points))

    def load(self) -> np.ndarray:
        """The image as BGR uint8 (H, W, 3)."""
        image = cv2.imread(str(self.image_path), cv2.IMREAD_COLOR)
        if image is None:
            raise DatasetError(f"cannot decode image {self.image_path}")
        return image


def data_root() -> Path:
    """``$CROWDWATCH_DATA``, else ``<repo>/../shared/data``."""
    env = os.environ.get("CROWDWATCH_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _read_mat_points(path: Path, dataset: str) -> np.ndarray:
    import scipy.io as sio

    mat = sio.loadmat(str(path))
    points = mat["image_info"][0][0][0][0]["location"] if dataset == "shanghaitech" else mat["loc"]
    points = np.asarray(points, np.float32).reshape(-1, 2)
    return points - 1.0  # MATLAB pixel centres are 1-based


def _require_dir(path: Path, what: str) -> None:
    if path.is_dir():
        return
    parts = sorted(p.name for p in path.parent.glob("*") if p.is_dir() and p.name != path.name)
    hint = f" (sub-folders there: {', '.join(parts)})" if parts else ""
    raise DatasetError(f"{what}: folder {path} does not exist{hint}")


def shanghaitech_images(folder: Path) -> list[AnnotatedImage]:
    """A ShanghaiTech part folder (``images/``, ``ground_truth/``), sorted by image number."""
    folder = Path(folder)
    _require_dir(folder / "images", f"ShanghaiTech layout expected in {folder}")
    items = []
    for image_path in (folder / "images").glob("*.jpg"):
        gt = folder / "ground_truth" / f"GT_{image_path.stem}.mat"
        if not gt.is_file():
            raise DatasetError(f"ground truth {gt} missing for {image_path}")
        items.append(
            AnnotatedImage(image_path.name, image_path, _read_mat_points(gt, "shanghaitech"))
        )
    return sorted(items, key=lambda s: _natural_key(s.name))


def brt_images(folder: Path) -> list[AnnotatedImage]:
    """A Beijing-BRT folder (``frame/``, ``ground_truth/``), sorted by name."""
    folder = Path(folder)
    _require_dir(folder / "frame", f"Beijing-BRT layout expected in {folder}")
    items = []
    for image_path in sorted((folder / "frame").glob("*.jpg")):
        gt = folder / "ground_truth" / f"{image_path.stem}.mat"
        if not gt.is_file():
            raise DatasetError(f"ground truth {gt} missing for {image_path}")
        items.append(AnnotatedImage(image_path.name, image_path, _read_mat_points(gt, "brt")))
    return items


def _natural_key(name: str) -> tuple:
    digits = "".join(ch for ch in name if ch.isdigit())
    return (int(digits) if digits else -1, name)


def annotated_samples(dataset: str, folder: Path) -> list[AnnotatedImage]:
    """Images with head points of ``dataset`` ("shanghaitech" or "brt") in ``folder``."""
    if dataset == "shanghaitech":
        return shanghaitech_images(folder)
    if dataset == "brt":
        return brt_images(folder)
    raise DatasetError(f"dataset {dataset!r} has no head points; expected 'shanghaitech' or 'brt'")


def split_key(dataset: str, folder: Path) -> str:
    """Key of ``folder`` in the validation-split file, e.g. ``shanghaitech/part_B_train``."""
    folder = Path(folder).resolve()
    if dataset == "shanghaitech":
        return f"shanghaitech/{folder.name}"
    if dataset == "brt":
        return f"beijing_brt/{folder.name}"
    raise DatasetError(f"dataset {dataset!r} has no validation split")


def load_val_split(path: Path = VAL_SPLIT_FILE) -> dict[str, list[str]]:
    """The committed validation split: ``{split_key: [image file names]}``."""
    return json.loads(Path(path).read_text())


def select_split(
    dataset: str, folder: Path, items: list[AnnotatedImage], split: str
) -> list[AnnotatedImage]:
    """``items`` restricted to ``split``: "all", "val" (held out) or "train" (the rest)."""
    if split == "all":
        return items
    if split not in ("val", "train"):
        raise DatasetError(f"split must be 'all', 'val' or 'train', not {split!r}")
    key = split_key(dataset, folder)
    val = load_val_split()
    if key not in val:
        raise DatasetError(f"no validation split for {key!r}; known: {sorted(val)}")
    names = set(val[key])
    return [s for s in items if (s.name in names) == (split == "val")]


def pets_counts(folder: Path) -> dict[int, int]:
    """PETS 2009 per-frame person counts: ``{video frame index: count_all}``."""
    csv_path = Path(folder) / "vtest_counts.csv"
    if not csv_path.is_file():
        raise DatasetError(f"PETS layout expected: {csv_path} does not exist")
    with csv_path.open(newline="") as f:
        return {int(row["video_frame_index"]): int(row["count_all"]) for row in csv.DictReader(f)}


def pets_frames(folder: Path, limit: int | None = None) -> Iterator[tuple[str, np.ndarray, float]]:
    """(name, BGR frame, ground-truth count) for every annotated frame of the PETS clip."""
    folder = Path(folder)
    if folder.is_file():
        folder = folder.parent
    counts = pets_counts(folder)
    video = folder / "vtest.avi"
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise DatasetError(f"cannot open video {video}")
    try:
        index, yielded = 0, 0
        while limit is None or yielded < limit:
            ok, frame = capture.read()
            if not ok:
                break
            if index in counts:
                yield f"frame_{index:04d}", frame, float(counts[index])
                yielded += 1
            index += 1
    finally:
        capture.release()


def iter_dataset(
    dataset: str, path: Path, *, split: str = "all", limit: int | None = None
) -> Iterator[tuple[str, np.ndarray, float]]:
    """(name, BGR image, ground-truth count) for a folder in ``dataset``'s layout.

    ``dataset`` is "shanghaitech", "brt" or "pets"; ``split`` ("all", "val", "train") applies to
    the first two (the PETS clip is never trained on, so it is always whole).
    """
    if dataset not in DATASETS:
        raise DatasetError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")
    if dataset == "pets":
        yield from pets_frames(Path(path), limit)
        return
    items = select_split(dataset, Path(path), annotated_samples(dataset, Path(path)), split)
    for item in items[:limit] if limit is not None else items:
        yield item.name, item.load(), float(item.count)
