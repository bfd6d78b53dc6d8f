"""Ultralytics YOLO backend: a local ``.pt``, ``.onnx`` or ``.yaml`` model, optionally tracked.

Nothing is downloaded: a model name that is not a local file is refused, because ultralytics would
otherwise try to fetch it from the internet and fail (or hang) on an offline site.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from crowdwatch.errors import EstimatorError
from crowdwatch.estimators.boxes import estimate_from_boxes
from crowdwatch.types import Anchor, Estimate

_SUFFIXES = {".pt", ".onnx", ".yaml", ".yml"}


def _prepare_offline_ultralytics() -> None:
    # Must be set before ultralytics is imported: no hub checks, no pip auto-installs.
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")
    os.environ.setdefault("YOLO_VERBOSE", "False")


class YoloEstimator:
    """People from a YOLO detector (COCO class 0 by default), optionally tracked across frames.

    Args:
        model: path of a local ``.pt``/``.onnx`` weights file, or a ``.yaml`` architecture
            (random weights: for testing the plumbing only).
        score_threshold: minimum detection confidence.
        track: keep identities across frames with ByteTrack (``track_ids`` in the estimate).
        person_class: class index of "person" in the model.
        image_size: inference size in pixels.

    Example:
        >>> yolo = YoloEstimator("models/my_people_model.pt", track=True)  # doctest: +SKIP
        >>> yolo.estimate(frame).track_ids  # doctest: +SKIP
    """

    name = "yolo"
    anchor = Anchor.FEET  # people are placed at the bottom-centre of their boxes

    def __init__(
        self,
        model: str | Path,
        score_threshold: float = 0.3,
        track: bool = False,
        person_class: int = 0,
        image_size: int = 640,
    ) -> None:
        path = Path(model)
        if path.suffix.lower() not in _SUFFIXES:
            raise EstimatorError(f"YOLO model must be a .pt, .onnx or .yaml file, got '{model}'")
        if path.suffix.lower() in {".pt", ".onnx"} and not path.is_file():
            raise EstimatorError(
                f"YOLO model file not found: {path} (crowdwatch never downloads weights; "
                "give the path of a local file)"
            )
        _prepare_offline_ultralytics()
        from ultralytics import YOLO  # imported late: torch is slow to load

        try:
            self._model = YOLO(str(path), task="detect")
        except Exception as exc:  # ultralytics raises many kinds; all mean "cannot load"
            raise EstimatorError(f"could not load YOLO model '{model}': {exc}") from exc
        self.model_file = path
        self.score_threshold = score_threshold
        self.track = track
        self.person_class = person_class
        self.image_size = image_size

    def estimate(self, image: np.ndarray) -> Estimate:
        options = dict(
            conf=self.score_threshold,
            classes=[self.person_class],
            imgsz=self.image_size,
            device="cpu",
            verbose=False,
        )
        if self.track:
            result = self._model.track(image, persist=True, tracker="bytetrack.yaml", **options)[0]
        else:
            result = self._model.predict(image, **options)[0]
        boxes = result.boxes.xyxy.cpu().numpy().astype(np.float32).reshape(-1, 4)
        scores = result.boxes.conf.cpu().numpy().astype(np.float32).reshape(-1)
        ids = result.boxes.id
        track_ids = ids.cpu().numpy().astype(np.int64) if ids is not None else None
        if self.track and track_ids is None:
            track_ids = np.zeros((0,), np.int64) if len(boxes) == 0 else np.full(len(boxes), -1)
        return estimate_from_boxes(boxes, scores, image.shape[:2], track_ids)
