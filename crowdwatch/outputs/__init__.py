"""Output files of an analysis run."""

from crowdwatch.outputs.summary import RunSummary, ZoneSummary
from crowdwatch.outputs.writers import (
    METRICS_COLUMNS,
    AnnotatedVideoWriter,
    MetricsCsvWriter,
    save_snapshot,
    write_json_atomically,
)

__all__ = [
    "METRICS_COLUMNS",
    "AnnotatedVideoWriter",
    "MetricsCsvWriter",
    "RunSummary",
    "ZoneSummary",
    "save_snapshot",
    "write_json_atomically",
]
