"""People estimators: a density-map crowd counter and person detectors behind one interface.

``make_estimator`` builds the one an :class:`EstimatorConfig` asks for. Models
are imported lazily: the YOLO backend loads torch, which takes seconds.
"""

from __future__ import annotations

import logging
import os

from crowdwatch.estimators.base import Estimator, EstimatorError
from crowdwatch.estimators.settings import EstimatorConfig

__all__ = ["Estimator", "EstimatorConfig", "EstimatorError", "make_estimator", "resolve_kind"]

log = logging.getLogger(__name__)


def resolve_kind(config: EstimatorConfig) -> str:
    """The estimator ``auto`` stands for: the density model when it is installed, else SSD."""
    if config.kind != "auto":
        return config.kind
    from crowdwatch.estimators.density import default_model_path

    if default_model_path().is_file():
        return "density"
    log.warning("density model %s not found; using the SSD person detector", default_model_path())
    return "ssd"


def make_estimator(config: EstimatorConfig | None = None, *, threads: int = 2) -> Estimator:
    """Build the estimator a config asks for (the default: the shipped density model), its
    model on ``threads`` threads per call where the backend takes a setting (onnxruntime).

    Example:
        >>> estimator = make_estimator(EstimatorConfig(kind="ssd"))  # doctest: +SKIP
    """
    config = config or EstimatorConfig()
    kind = resolve_kind(config)
    if kind == "density":
        from crowdwatch.estimators.density import DensityEstimator

        density = DensityEstimator(model_path=config.model, threads=threads, device=config.device)
        if config.sparse_gate is None:
            return density
        from crowdwatch.estimators.sparse_gate import SparseSceneGate
        from crowdwatch.estimators.ssd import SsdPersonDetector

        gate = config.sparse_gate
        return SparseSceneGate(
            density,
            lambda: SsdPersonDetector(score_threshold=gate.score_threshold),
            below=gate.below,
            agreement=gate.agreement,
            detectors=len(os.sched_getaffinity(0)),  # as many calls at once as the engine makes
        )
    if kind == "ssd":
        from crowdwatch.estimators.ssd import SsdPersonDetector

        return SsdPersonDetector(score_threshold=config.score_threshold, tiles=config.tiles)
    if config.model is None:
        raise EstimatorError("the yolo estimator needs 'model': a local .pt, .onnx or .yaml file")
    from crowdwatch.estimators.yolo import YoloEstimator

    return YoloEstimator(config.model, score_threshold=config.score_threshold, track=config.track)
