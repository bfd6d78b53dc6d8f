"""Crowd measures, one pure function each: levels of service, rate of rise, time to threshold."""

from crowdwatch.calibration.metric_density import zone_density
from crowdwatch.measures.colour_scale import SAFETY_COLOURS, DensityColourScale
from crowdwatch.measures.levels import (
    CROWD_SAFETY_DENSITY,
    FRUIN_WALKWAY_DENSITY,
    FRUIN_WALKWAY_FLOW,
    LevelBands,
    density_level_of_service,
    flow_level_of_service,
    safety_level,
)
from crowdwatch.measures.trends import (
    minutes_at_trend,
    minutes_to_threshold,
    rate_of_rise,
    theil_sen,
    trend,
)

__all__ = [
    "CROWD_SAFETY_DENSITY",
    "FRUIN_WALKWAY_DENSITY",
    "FRUIN_WALKWAY_FLOW",
    "SAFETY_COLOURS",
    "DensityColourScale",
    "LevelBands",
    "density_level_of_service",
    "flow_level_of_service",
    "minutes_at_trend",
    "minutes_to_threshold",
    "rate_of_rise",
    "safety_level",
    "theil_sen",
    "trend",
    "zone_density",
]
