"""``config check`` for a venue: a pure function of the venue and the cameras' ground footprints.

Footprints come from :func:`crowdwatch.venue.fusion.camera_footprint` (the ground each calibrated
camera's frame sees, in venue metres). Each problem is one line naming what is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shapely.geometry import Polygon, box
from shapely.geometry.base import BaseGeometry

from crowdwatch.venue.settings import Point, VenueConfig

#: A single camera seeing more than this much ground (m²) is implausible: its ground points are
#: probably not in venue metres, or it looks at the horizon.
MAX_FOOTPRINT_M2 = 40_000.0
#: ... or less than this.
MIN_FOOTPRINT_M2 = 1.0


def _as_polygon(footprint: BaseGeometry | Sequence[Point] | None) -> BaseGeometry:
    if footprint is None:
        return Polygon()
    if isinstance(footprint, BaseGeometry):
        return footprint
    points = list(footprint)
    return Polygon(points) if len(points) >= 3 else Polygon()


def covering_cameras(
    polygon: BaseGeometry, footprints: Mapping[str, BaseGeometry], *, min_share: float = 0.0
) -> list[str]:
    """The cameras whose footprints cover more than ``min_share`` of ``polygon``'s area."""
    area = polygon.area
    names = []
    for name, footprint in footprints.items():
        if footprint.is_empty:
            continue
        shared = footprint.intersection(polygon).area
        if shared > 0 and (area <= 0 or shared / area > min_share):
            names.append(name)
    return names


def venue_problems(
    venue: VenueConfig,
    footprints: Mapping[str, BaseGeometry | Sequence[Point] | None],
    *,
    max_footprint_m2: float = MAX_FOOTPRINT_M2,
    min_footprint_m2: float = MIN_FOOTPRINT_M2,
    camera_lines: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """Every problem of ``venue`` given the calibrated cameras' footprints (camera -> footprint,
    None for a camera without calibration), as ``"- ..."`` lines like ``config check``'s.

    Checks: each camera's footprint is plausible (sees ground, neither tiny nor huge, lies on the
    venue; an implausible one covers nothing); each venue zone is seen by some camera, and
    enough of it; each gate lies in some camera's view; each gate's counting lines name a
    camera's line (``camera_lines``: camera -> its line names, when given).
    """
    problems: list[str] = []
    shapes = {name: _as_polygon(fp) for name, fp in footprints.items()}
    x_min, y_min, x_max, y_max = venue.bounds_m()
    extent = box(x_min, y_min, x_max, y_max)
    usable: dict[str, BaseGeometry] = {}
    for name, footprint in shapes.items():
        where = f"- camera {name!r}"
        if footprints[name] is None:
            continue  # no calibration: it is not on the venue ground (config check says so)
        if footprint.is_empty or footprint.area <= 0:
            problems.append(f"{where}: its calibration sees no ground, so it has no footprint")
            continue
        if not footprint.is_valid:
            problems.append(f"{where}: its ground footprint folds over itself (check the "
                            "order of its calibration points)")  # fmt: skip
            continue
        if footprint.area > max_footprint_m2:
            problems.append(
                f"{where}: its ground footprint is {footprint.area:,.0f} m² (over "
                f"{max_footprint_m2:,.0f} m²): are its ground_points in venue metres, and is the "
                "horizon out of the frame?"
            )
            continue  # an implausible footprint covers nothing
        elif footprint.area < min_footprint_m2:
            problems.append(
                f"{where}: its ground footprint is only {footprint.area:.2f} m²: are its "
                "ground_points in metres?"
            )
            continue
        if not footprint.intersects(extent):
            fx0, fy0, fx1, fy1 = footprint.bounds
            problems.append(
                f"{where}: its footprint ({fx0:.0f}..{fx1:.0f}, {fy0:.0f}..{fy1:.0f} m) lies off "
                f"the venue ({x_min:.0f}..{x_max:.0f}, {y_min:.0f}..{y_max:.0f} m): its "
                "calibration ground_points must be venue coordinates"
            )
            continue
        usable[name] = footprint
    for zone in venue.zones:
        polygon = zone.polygon
        seen = [fp for fp in usable.values() if fp.intersects(polygon)]
        if not seen:
            problems.append(f"- venue zone {zone.name!r}: no camera footprint covers it")
            continue
        union = seen[0]
        for fp in seen[1:]:
            union = union.union(fp)
        share = union.intersection(polygon).area / polygon.area
        needed = venue.covered_threshold(zone)
        if share < needed:
            problems.append(
                f"- venue zone {zone.name!r}: cameras see {share:.0%} of it, less than the "
                f"{needed:.0%} it needs to be known (it would always read unknown)"
            )
    for gate in venue.gates:
        segment = gate.segment
        if not any(fp.intersects(segment) for fp in usable.values()):
            problems.append(f"- gate {gate.name!r}: it lies outside every camera's view")
        elif not any(fp.buffer(1e-9).covers(segment) for fp in usable.values()):
            problems.append(f"- gate {gate.name!r}: no single camera sees the whole gate")
        if camera_lines is not None:
            for line in gate.lines:
                camera, _, name = line.target.partition("/")
                if camera not in camera_lines:
                    problems.append(f"- gate {gate.name!r}: line {line.target!r} names no camera")
                elif name not in camera_lines[camera]:
                    problems.append(
                        f"- gate {gate.name!r}: camera {camera!r} has no counting line {name!r}"
                    )
    return problems
