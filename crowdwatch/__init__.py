"""crowdwatch: crowd-safety analytics that count people, never identify them.

Data flows one way through the packages: ``sources`` (frames) -> ``estimators`` (an
:class:`Estimate` per frame: density map and positions) -> ``zones`` / ``calibration`` /
``motion`` / ``measures`` (metrics) -> ``alerts`` (levels, latch, hysteresis, cooldown) ->
outputs, store and console.

Example:
    >>> from crowdwatch import AnalysisOptions, analyze, load_config  # doctest: +SKIP
    >>> config = load_config("sample_videos/pets2009_s2l1.yaml")  # doctest: +SKIP
    >>> summary = analyze(None, config, Path("out/run"), AnalysisOptions(every=2))  # doctest: +SKIP
"""

from crowdwatch.config import EventConfig, default_config, load_config, parse_config
from crowdwatch.errors import ConfigError, CrowdwatchError, EstimatorError, SourceError
from crowdwatch.estimators import Estimator, make_estimator
from crowdwatch.heatmap import LiveHeatmap, splat_points
from crowdwatch.pipeline import AnalysisOptions, CameraAnalyzer, FrameResult, analyze
from crowdwatch.sources import open_source, sample_frames
from crowdwatch.types import Estimate, Frame
from crowdwatch.zones import Zone

__version__ = "0.1.0"

__all__ = [
    "AnalysisOptions",
    "CameraAnalyzer",
    "ConfigError",
    "CrowdwatchError",
    "Estimate",
    "Estimator",
    "EstimatorError",
    "EventConfig",
    "Frame",
    "FrameResult",
    "LiveHeatmap",
    "SourceError",
    "Zone",
    "analyze",
    "default_config",
    "load_config",
    "make_estimator",
    "open_source",
    "parse_config",
    "sample_frames",
    "splat_points",
]
