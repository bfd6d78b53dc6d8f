"""Crowd motion: dense optical flow, ground velocities, counting-line flow, pressure, stalls."""

from crowdwatch.motion.lines import (
    CountingLine,
    LineCrossingCounter,
    LineFlow,
    crossings_between,
    line_flow,
)
from crowdwatch.motion.optical_flow import (
    DenseFlow,
    FlowStream,
    crowd_flow,
    crowd_velocity,
    density_flow,
    ground_velocity,
)
from crowdwatch.motion.pressure import crowd_pressure_map, zone_mean_speed, zone_pressure
from crowdwatch.motion.stall import StallState, detect_stalled_flow

__all__ = [
    "CountingLine",
    "DenseFlow",
    "FlowStream",
    "LineCrossingCounter",
    "LineFlow",
    "StallState",
    "crossings_between",
    "crowd_flow",
    "crowd_pressure_map",
    "crowd_velocity",
    "density_flow",
    "detect_stalled_flow",
    "ground_velocity",
    "line_flow",
    "zone_mean_speed",
    "zone_pressure",
]
