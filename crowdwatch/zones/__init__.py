"""Zones of the image: polygons with their ground area and people counts."""

from crowdwatch.zones.zone import WHOLE_FRAME, Zone

__all__ = ["WHOLE_FRAME", "Zone"]
