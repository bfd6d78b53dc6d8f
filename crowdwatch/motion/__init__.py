"""Crowd motion: dense optical flow, ground velocities, counting-line flow, pressure, stalls."""

from crowdwatch.motion.lines import (
    CountingLine,
    LineCrossingCounter,
    LineFlow,
    LineFlowCounter,
    LineFlowMeter,
    crossings_between,
    line_flow,
)
from crowdwatch.motion.optical_flow import (
    DenseFlow,
    FlowStream,
    crowd_flow,
    crowd_velocity,
    crowd_velocity_reduced,
    density_flow,
    ground_velocity,
    moving_mass,
)
from crowdwatch.motion.pressure import (
    crowd_pressure_map,
    people_weighted_mean,
    zone_mean_speed,
    zone_pressure,
)
from crowdwatch.motion.stall import StallState, detect_stalled_flow, flow_is_stalled

__all__ = [
    "CountingLine",
    "DenseFlow",
    "FlowStream",
    "LineCrossingCounter",
    "LineFlow",
    "LineFlowCounter",
    "LineFlowMeter",
    "StallState",
    "crossings_between",
    "crowd_flow",
    "crowd_pressure_map",
    "crowd_velocity",
    "crowd_velocity_reduced",
    "density_flow",
    "detect_stalled_flow",
    "flow_is_stalled",
    "ground_velocity",
    "line_flow",
    "moving_mass",
    "people_weighted_mean",
    "zone_mean_speed",
    "zone_pressure",
]
