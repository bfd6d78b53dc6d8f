"""Event configuration: the YAML schema, loading with readable errors, checks against cameras."""

from crowdwatch.config.check import check_against_frames, probe_frame_size
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
    "check_against_frames",
    "default_config",
    "load_config",
    "parse_config",
    "probe_frame_size",
]
