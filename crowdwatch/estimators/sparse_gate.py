"""The density model in near-empty scenes, kept to where a person detector sees people.

A density model trained for crowds reads head-like things (a bag, a tripod, a bollard) as a
fraction of a person each. In a crowd that is noise; in a plaza of six it is a person too many
(the PETS clip: +1.1 people a frame). A detector does not make that error where people are large
and apart, but misses most people in a crowd. :class:`SparseSceneGate` uses each where it is
right: when the density model counts fewer than ``below`` people *and* the detector finds at
least ``agreement`` x that many (a scene the detector sees whole), the density is kept only
around the detections and its count capped at their number; otherwise the density estimate is
returned unchanged. The result is still a density map that sums to the count, so it stays the
heat map, and every measure downstream reads it as before.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from crowdwatch.estimators.density import DensityEstimator
from crowdwatch.estimators.ssd import SsdPersonDetector
from crowdwatch.types import Anchor, Estimate

#: How far each detection box is widened on every side, as a fraction of its width and height:
#: a head's density sits on and just above the box's top edge.
BOX_MARGIN = 0.25


def detection_mask(*, boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Boolean (height, width) mask of the frame covered by ``boxes`` (N, 4: x1, y1, x2, y2 px),
    each widened by :data:`BOX_MARGIN` of its own width and height on every side."""
    mask = np.zeros((height, width), np.uint8)
    for x1, y1, x2, y2 in np.asarray(boxes, np.float64).reshape(-1, 4):
        dx, dy = BOX_MARGIN * (x2 - x1), BOX_MARGIN * (y2 - y1)
        top_left = (int(np.floor(x1 - dx)), int(np.floor(y1 - dy)))
        bottom_right = (int(np.ceil(x2 + dx)), int(np.ceil(y2 + dy)))
        cv2.rectangle(mask, top_left, bottom_right, 1, thickness=-1)
    return mask.astype(bool)


def gate_density(*, density: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The density (people per pixel, H x W) kept inside the detections' widened boxes and
    scaled so that it sums to ``min(mass inside, N detections)``.

    ``count = min(sum(density[mask]), N)``: the density places people and reads a pair one box
    hides; the detections bound the count from above, as every real person in a scene the
    detector sees whole stands in or next to a box, and density outside them is not a person.
    """
    mask = detection_mask(boxes=boxes, height=density.shape[0], width=density.shape[1])
    kept = np.where(mask, density, np.float32(0)).astype(np.float32, copy=False)
    mass = float(kept.sum(dtype=np.float64))
    limit = float(len(boxes))
    if mass > limit:  # so mass > 0, as limit (the number of boxes) is never negative
        kept *= np.float32(limit / mass)
    return kept


def scene_is_sparse(
    *, density_count: float, detections: int, below: float, agreement: float
) -> bool:
    """Whether the detector sees the scene whole: ``density_count < below`` people and
    ``detections >= agreement x density_count``."""
    return density_count < below and detections >= agreement * density_count


class SparseSceneGate:
    """The density model, gated by a person detector in near-empty scenes (see the module).

    The detector runs only on frames the density model counts below ``below`` people, so
    crowded cameras pay nothing for it; a near-empty frame costs one SSD pass more.
    ``make_detector`` builds a detector; up to ``detectors`` of them are made, as concurrent
    calls need them (an OpenCV DNN net runs one call at a time), and each call takes an idle one.

    Example:
        >>> gate = SparseSceneGate(DensityEstimator(), SsdPersonDetector)  # doctest: +SKIP
        >>> gate.estimate(frame).count  # doctest: +SKIP
        5.0
    """

    name = "density+ssd"
    anchor = Anchor.HEAD
    #: Several camera threads may call it at once: the density model's session runs them side by
    #: side, and each detector (an OpenCV DNN net, not thread-safe) serves one call at a time.
    concurrent_calls = True

    def __init__(
        self,
        density: DensityEstimator,
        make_detector: Callable[[], SsdPersonDetector],
        *,
        below: float = 20.0,
        agreement: float = 0.7,
        detectors: int = 1,
    ) -> None:
        self.density = density
        self.below = below
        self.agreement = agreement
        #: Frames gated so far, of all estimated: how often the detector's evidence decided.
        self.gated = 0
        self.estimated = 0
        self._make_detector = make_detector
        self._max_detectors = max(1, detectors)
        self._idle: queue.SimpleQueue[SsdPersonDetector] = queue.SimpleQueue()
        self._idle.put(make_detector())
        self._made = 1
        self._lock = threading.Lock()

    @property
    def model_file(self) -> Path:
        return self.density.model_file

    @property
    def batches(self) -> bool:
        return self.density.batches

    def estimate(self, image: np.ndarray) -> Estimate:
        """The density estimate, gated by the detections where the scene is sparse."""
        return self.gate(image, self.density.estimate(image))

    def estimate_batch(self, images: list[np.ndarray]) -> list[Estimate]:
        """:meth:`estimate` of each image, the density model's part in one batched call."""
        estimates = self.density.estimate_batch(images)
        return [
            self.gate(image, estimate) for image, estimate in zip(images, estimates, strict=True)
        ]

    def gate(self, image: np.ndarray, estimate: Estimate) -> Estimate:
        """``estimate`` (the density model's for ``image``), gated if the scene is sparse."""
        with self._lock:
            self.estimated += 1
        if estimate.count >= self.below:
            return estimate
        boxes, scores = self._detect(image)
        sparse = scene_is_sparse(
            density_count=estimate.count,
            detections=len(boxes),
            below=self.below,
            agreement=self.agreement,
        )
        if not sparse:
            return estimate
        with self._lock:
            self.gated += 1
        density = gate_density(density=estimate.density, boxes=boxes)
        points = _points_inside(estimate.points, density)
        return Estimate(
            density=density, anchor=self.anchor, points=points, boxes=boxes, scores=scores
        )

    def _detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The detections of ``image`` by an idle detector (one more made while all are busy and
        fewer than ``detectors`` exist)."""
        detector = self._take_detector()
        try:
            return detector.detect(image)
        finally:
            self._idle.put(detector)

    def _take_detector(self) -> SsdPersonDetector:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            make_one = self._made < self._max_detectors
            self._made += int(make_one)
        return self._make_detector() if make_one else self._idle.get()


def _points_inside(points: np.ndarray, density: np.ndarray) -> np.ndarray:
    """The drawn peak positions that still carry density after gating."""
    if len(points) == 0:
        return points
    xs = np.clip(np.round(points[:, 0]).astype(int), 0, density.shape[1] - 1)
    ys = np.clip(np.round(points[:, 1]).astype(int), 0, density.shape[0] - 1)
    return points[density[ys, xs] > 0]
