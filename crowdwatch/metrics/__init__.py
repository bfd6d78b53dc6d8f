"""Per-frame metric records: what was measured in each zone and across each counting line."""

from crowdwatch.metrics.records import LineMetrics, ZoneMetrics, measure_zone

__all__ = ["LineMetrics", "ZoneMetrics", "measure_zone"]
