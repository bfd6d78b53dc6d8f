"""The metric records one analysed frame produces: one per zone and one per counting line.

The record types live in :mod:`crowdwatch.types` (every stage takes them); this module builds
them from what a zone measured.
"""

from __future__ import annotations

from crowdwatch.types import LineMetrics, ZoneMetrics

__all__ = ["LineMetrics", "ZoneMetrics", "measure_zone"]


def measure_zone(
    *,
    camera: str,
    zone: str,
    frame_index: int,
    time_s: float,
    count: float,
    area_m2: float | None,
    capacity: int | None,
) -> ZoneMetrics:
    """A zone's count with its area and capacity as a metrics record.

    ``density = count / area_m2`` (people/m²), ``occupancy = count / capacity``; each None when
    its divisor is unknown.

    Example:
        >>> measure_zone(camera="c", zone="z", frame_index=0, time_s=0.0, count=6.0,
        ...              area_m2=3.0, capacity=None).density
        2.0
    """
    return ZoneMetrics(
        camera=camera,
        zone=zone,
        frame_index=frame_index,
        time_s=time_s,
        count=count,
        area_m2=area_m2,
        density=count / area_m2 if area_m2 else None,
        occupancy=count / capacity if capacity else None,
    )
