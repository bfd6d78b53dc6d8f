"""The ``venue:`` section of an event config: one metric frame for every camera of a site.

Venue coordinates are metres on the ground, x to the right and y up as on a map. Every
calibrated camera's ``calibration.ground_points`` are given in these coordinates, so all cameras
map onto one ground. Example::

    venue:
      name: riverside-arena
      cell_m: 0.25
      plan: {image: site.png, metres_per_pixel: 0.05, origin_px: [120, 880]}
      anchor: {lat: 51.5072, lon: -0.1276, bearing_deg: 30}
      zones:
        - name: north-concourse
          polygon_m: [[0, 0], [40, 0], [40, 12], [0, 12]]
          critical_density: 4.0
          alerts:
            - metric: density
              levels: {advisory: 2.0, warning: 3.5, critical: 5.0}
      gates:
        - name: gate-a
          start_m: [10, 0]
          end_m: [16, 0]
          width_m: 6
          into: north-concourse
          lines: [{target: plaza/walkway}]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from shapely.geometry import LineString, Polygon

from crowdwatch.alerts import AlertRule

Point = tuple[float, float]

#: Mean Earth radius (IUGG), metres: the local tangent plane of :class:`GeoAnchor`.
EARTH_RADIUS_M = 6_371_008.8


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class SitePlan(_Model):
    """A site-plan image and how its pixels lie on the venue ground.

    Plan pixel (u, v) is venue point ((u - origin_u) * metres_per_pixel,
    (origin_v - v) * metres_per_pixel): ``origin_px`` is the plan pixel of venue (0, 0), and plan
    rows run down while venue y runs up. ``image`` is a path (relative to the config file) or
    None for a plain metric grid.
    """

    image: str | None = None
    metres_per_pixel: float = Field(gt=0)
    origin_px: Point = (0.0, 0.0)
    size_px: tuple[int, int] | None = None

    def to_plan_px(self, points_m: Sequence[Point] | np.ndarray) -> np.ndarray:
        """Plan pixels (N, 2) of venue points (N, 2) in metres."""
        points = np.asarray(points_m, np.float64).reshape(-1, 2)
        u0, v0 = self.origin_px
        return np.column_stack(
            [u0 + points[:, 0] / self.metres_per_pixel, v0 - points[:, 1] / self.metres_per_pixel]
        )

    def to_venue_m(self, points_px: Sequence[Point] | np.ndarray) -> np.ndarray:
        """Venue points (N, 2) in metres of plan pixels (N, 2)."""
        points = np.asarray(points_px, np.float64).reshape(-1, 2)
        u0, v0 = self.origin_px
        return np.column_stack(
            [
                (points[:, 0] - u0) * self.metres_per_pixel,
                (v0 - points[:, 1]) * self.metres_per_pixel,
            ]
        )

    def bounds_m(self) -> tuple[float, float, float, float] | None:
        """(x_min, y_min, x_max, y_max) of the plan in venue metres, when its size is known."""
        if self.size_px is None:
            return None
        corners = self.to_venue_m([(0, 0), self.size_px])
        return (
            float(corners[:, 0].min()),
            float(corners[:, 1].min()),
            float(corners[:, 0].max()),
            float(corners[:, 1].max()),
        )


class GeoAnchor(_Model):
    """Where the venue lies on the Earth: one reference point and the bearing of venue +y.

    ``origin_m`` (default venue (0, 0)) lies at ``lat``/``lon`` (WGS84 degrees);
    ``bearing_deg`` is the compass bearing of the venue's +y axis (0: +y points north, 90: east).
    Venue metres go to WGS84 through the local tangent plane at the anchor, good to centimetres
    over a venue's few hundred metres.

    Example:
        >>> anchor = GeoAnchor(lat=0.0, lon=0.0, bearing_deg=90.0)
        >>> lat, lon = anchor.to_wgs84([(0.0, 1000.0)])[0]  # 1 km along +y, which points east
        >>> round(lat, 6), round(lon, 5)
        (0.0, 0.00899)
    """

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    bearing_deg: float = Field(default=0.0, ge=-360, le=360)
    origin_m: Point = (0.0, 0.0)

    def to_wgs84(self, points_m: Sequence[Point] | np.ndarray) -> list[tuple[float, float]]:
        """(lat, lon) in degrees of venue points in metres."""
        points = np.asarray(points_m, np.float64).reshape(-1, 2) - np.asarray(self.origin_m)
        theta = math.radians(self.bearing_deg)
        east = points[:, 0] * math.cos(theta) + points[:, 1] * math.sin(theta)
        north = -points[:, 0] * math.sin(theta) + points[:, 1] * math.cos(theta)
        lat = self.lat + np.degrees(north / EARTH_RADIUS_M)
        lon = self.lon + np.degrees(east / (EARTH_RADIUS_M * math.cos(math.radians(self.lat))))
        return [(float(a), float(b)) for a, b in zip(lat, lon, strict=True)]


class VenueZoneConfig(_Model):
    """A venue zone: a polygon on the venue ground watched by whichever cameras see it.

    Attributes:
        polygon_m: vertices in venue metres (a simple polygon, 3 or more vertices).
        capacity: people the zone holds safely (occupancy = count / capacity).
        critical_density: people/m² the mass-balance time to critical counts towards.
        min_covered_fraction: below this share of the zone seen by live cameras the zone is
            ``unknown`` (None: the venue's default).
        alerts: rules in the camera zones' format (count, density, occupancy, ...).
    """

    name: str = Field(min_length=1)
    polygon_m: list[Point] = Field(min_length=3)
    capacity: float | None = Field(default=None, gt=0)
    critical_density: float = Field(default=5.0, gt=0)
    min_covered_fraction: float | None = Field(default=None, gt=0, le=1)
    alerts: list[AlertRule] = Field(default_factory=list)

    @field_validator("polygon_m")
    @classmethod
    def _simple_polygon(cls, value: list[Point]) -> list[Point]:
        polygon = Polygon(value)
        if not polygon.is_valid:
            raise ValueError("polygon_m crosses itself; list the vertices in order around it")
        if polygon.area <= 0:
            raise ValueError("polygon_m has no area")
        return value

    @property
    def polygon(self) -> Polygon:
        """The zone as a shapely polygon in venue metres."""
        return Polygon(self.polygon_m)

    @property
    def area_m2(self) -> float:
        """The zone's ground area."""
        return float(self.polygon.area)


class GateLineConfig(_Model):
    """A camera's counting line that measures a gate: ``target`` is ``camera/line``;
    ``reversed`` when the line's "in" side is the gate's way out."""

    target: str = Field(pattern=r"^[^/]+/[^/]+$")
    reversed: bool = False


class GateConfig(_Model):
    """A gate: a segment on the venue ground people pass through.

    Attributes:
        start_m, end_m: the segment's ends in venue metres.
        width_m: the clear width people pass through (default: the segment's length); flow per
            metre (Fruin) is people/min over it.
        into: the venue zone the gate's "in" direction enters (None: outside the venue).
        out_of: the venue zone its "in" direction leaves (None: outside the venue).
        lines: the cameras' counting lines that measure it (several: their flows are averaged,
            never added: they count the same people).
        alerts: rules (``flow_rate`` people/m/min) in the existing format.
    """

    name: str = Field(min_length=1)
    start_m: Point
    end_m: Point
    width_m: float | None = Field(default=None, gt=0)
    into: str | None = None
    out_of: str | None = None
    lines: list[GateLineConfig] = Field(default_factory=list)
    alerts: list[AlertRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _a_segment(self) -> GateConfig:
        if math.dist(self.start_m, self.end_m) <= 0:
            raise ValueError(f"gate {self.name!r}: start_m and end_m are the same point")
        if self.into is not None and self.into == self.out_of:
            raise ValueError(f"gate {self.name!r}: 'into' and 'out_of' are the same zone")
        return self

    @property
    def segment(self) -> LineString:
        """The gate as a shapely segment in venue metres."""
        return LineString([self.start_m, self.end_m])

    @property
    def clear_width_m(self) -> float:
        """``width_m``, or the segment's length."""
        return float(self.width_m or self.segment.length)


class VenueConfig(_Model):
    """The ``venue:`` section: the site's one metric frame, its zones and gates.

    Attributes:
        name: the venue's name.
        cell_m: side of the venue grid's cells (the fused people/m² heat map).
        margin_m: how far the venue grid reaches beyond the zones and gates.
        plan: optional site-plan image with its scale and origin.
        anchor: optional geographic anchor (CAP polygons in WGS84).
        min_covered_fraction: default share of a zone live cameras must see to know it.
        zones, gates: the venue zones and gates.
    """

    name: str = Field(min_length=1)
    cell_m: float = Field(default=0.25, gt=0, le=5)
    margin_m: float = Field(default=2.0, ge=0)
    plan: SitePlan | None = None
    anchor: GeoAnchor | None = None
    min_covered_fraction: float = Field(default=0.8, gt=0, le=1)
    zones: list[VenueZoneConfig] = Field(default_factory=list)
    gates: list[GateConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names_and_references(self) -> VenueConfig:
        problems = []
        for kind, items in (("zone", self.zones), ("gate", self.gates)):
            seen: set[str] = set()
            for item in items:
                if item.name in seen:
                    problems.append(f"two venue {kind}s are named {item.name!r}")
                seen.add(item.name)
        zones = {zone.name for zone in self.zones}
        for gate in self.gates:
            for key in ("into", "out_of"):
                ref = getattr(gate, key)
                if ref is not None and ref not in zones:
                    problems.append(f"gate {gate.name!r}: {key} {ref!r} is not a venue zone")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def zone(self, name: str) -> VenueZoneConfig:
        """The venue zone called ``name``."""
        for zone in self.zones:
            if zone.name == name:
                return zone
        raise KeyError(name)

    def covered_threshold(self, zone: VenueZoneConfig) -> float:
        """The share of ``zone`` live cameras must see for it to be known."""
        return zone.min_covered_fraction or self.min_covered_fraction

    def bounds_m(self) -> tuple[float, float, float, float]:
        """(x_min, y_min, x_max, y_max) of the venue grid: the plan, or the zones and gates with
        ``margin_m`` around them."""
        plan = self.plan.bounds_m() if self.plan is not None else None
        if plan is not None:
            return plan
        points = [p for zone in self.zones for p in zone.polygon_m]
        points += [p for gate in self.gates for p in (gate.start_m, gate.end_m)]
        if not points:
            raise ValueError(f"venue {self.name!r} has no zones, gates or plan size to span")
        xy = np.asarray(points, np.float64)
        m = self.margin_m
        x_min, y_min = xy.min(axis=0) - m
        x_max, y_max = xy.max(axis=0) + m
        return float(x_min), float(y_min), float(x_max), float(y_max)
