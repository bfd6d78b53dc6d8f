"""Per-frame metric records: what was measured in each zone."""

from crowdwatch.metrics.records import ZoneMetrics, measure_zone

__all__ = ["ZoneMetrics", "measure_zone"]
