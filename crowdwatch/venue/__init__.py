"""The venue: every camera on one site plan, venue zones fused across cameras, gates, time to
critical by mass balance, zones that go unknown when nobody live watches them, CAP 1.2 alerts.

Layering: imports alerts, calibration, types only (below config, so the config schema can hold
a :class:`VenueConfig`).
"""

from crowdwatch.venue.analyzer import VenueAnalyzer, VenueResult, VenueZoneRecord
from crowdwatch.venue.cap import CAP_NAMESPACE, alert_to_cap, cap_document, cap_polygon
from crowdwatch.venue.checks import covering_cameras, venue_problems
from crowdwatch.venue.fusion import (
    CameraGround,
    CameraView,
    FusedGrid,
    VenueFusion,
    camera_footprint,
    cell_centres,
    venue_grid,
)
from crowdwatch.venue.measures import (
    GateFlow,
    VenueZoneMeasure,
    ZoneMask,
    covered_fraction,
    gate_flow,
    measure_zone,
    minutes_to_critical,
    net_inflow,
    zone_count,
    zone_mask,
)
from crowdwatch.venue.settings import (
    GateConfig,
    GateLineConfig,
    GeoAnchor,
    SitePlan,
    VenueConfig,
    VenueZoneConfig,
)
from crowdwatch.venue.state import ZoneState, ZoneStatus, display_level, is_live, zone_status

__all__ = [
    "CAP_NAMESPACE",
    "CameraGround",
    "CameraView",
    "FusedGrid",
    "GateConfig",
    "GateFlow",
    "GateLineConfig",
    "GeoAnchor",
    "SitePlan",
    "VenueConfig",
    "VenueAnalyzer",
    "VenueFusion",
    "VenueResult",
    "VenueZoneConfig",
    "VenueZoneMeasure",
    "VenueZoneRecord",
    "ZoneMask",
    "ZoneState",
    "ZoneStatus",
    "alert_to_cap",
    "camera_footprint",
    "cap_document",
    "cap_polygon",
    "cell_centres",
    "covered_fraction",
    "covering_cameras",
    "display_level",
    "gate_flow",
    "is_live",
    "measure_zone",
    "minutes_to_critical",
    "net_inflow",
    "venue_grid",
    "venue_problems",
    "zone_count",
    "zone_mask",
    "zone_status",
]
