"""Event configuration: the YAML schema and loading with readable errors.

Checks that need a camera's frames live in :mod:`crowdwatch.pipeline.geometry`.
"""

from crowdwatch.config.load import default_config, load_config, parse_config
from crowdwatch.config.schema import (
    CalibrationConfig,
    CameraConfig,
    EstimatorConfig,
    EventConfig,
    HeatmapConfig,
    LineConfig,
    WebhookConfig,
    ZoneConfig,
)

__all__ = [
    "CalibrationConfig",
    "CameraConfig",
    "EstimatorConfig",
    "EventConfig",
    "HeatmapConfig",
    "LineConfig",
    "WebhookConfig",
    "ZoneConfig",
    "default_config",
    "load_config",
    "parse_config",
]
