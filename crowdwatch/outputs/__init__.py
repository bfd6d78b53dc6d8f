"""Output files of an analysis run."""

from crowdwatch.outputs.summary import LineSummary, RunSummary, ZoneSummary
from crowdwatch.outputs.writers import (
    LINE_COLUMNS,
    METRICS_COLUMNS,
    AnnotatedVideoWriter,
    RecordsCsvWriter,
    save_snapshot,
    write_json_atomically,
)

__all__ = [
    "LINE_COLUMNS",
    "METRICS_COLUMNS",
    "AnnotatedVideoWriter",
    "RecordsCsvWriter",
    "LineSummary",
    "RunSummary",
    "ZoneSummary",
    "save_snapshot",
    "write_json_atomically",
]
