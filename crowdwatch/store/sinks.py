"""Feeding the store from analysis: an alert sink and a metrics writer.

Analysis works in stream seconds (video time for files); the store in wall-clock epoch seconds.
A :class:`WallClock` maps one to the other: for a recorded file, the run's start time plus the
video time; for the live engine, whose frames already carry epoch times, an offset of zero.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crowdwatch.alerts.records import AlertEvent, AlertRecord
from crowdwatch.store.records import MetricSample
from crowdwatch.store.spool import StoreSpool
from crowdwatch.store.sql import SqlStore
from crowdwatch.types import LineMetrics, MetricsRecord, ZoneMetrics

log = logging.getLogger(__name__)

_ALERT_TIMES = ("start_s", "opened_s", "end_s", "closed_s", "acknowledged_s")
# Fields of a metrics record that identify it rather than measure something.
_IDENTITY_FIELDS = {"camera", "zone", "line", "target", "frame_index", "time_s", "level", "kind"}


@dataclass(frozen=True)
class WallClock:
    """``wall = offset + stream seconds``.

    Example:
        >>> WallClock(1_700_000_000.0).wall(2.5)
        1700000002.5
    """

    offset: float = 0.0

    @classmethod
    def starting_now(cls) -> WallClock:
        """Video time 0 is now (for analysing a recording as if it were live)."""
        return cls(time.time())

    def wall(self, stream_s: float) -> float:
        """Wall time of a stream time."""
        return self.offset + stream_s


def alert_at_wall_time(record: AlertRecord, clock: WallClock) -> AlertRecord:
    """A copy of an alert with every time moved from stream to wall time."""
    shifted = record.copy()
    for name in _ALERT_TIMES:
        value = getattr(shifted, name)
        if value is not None:
            setattr(shifted, name, clock.wall(value))
    return shifted


def metric_sample(
    record: MetricsRecord, clock: WallClock, run_id: str | None = None
) -> MetricSample:
    """A store sample from a frame's metrics record: a zone's (kind ``zone``) or a counting
    line's (kind ``line``); every measured number becomes a value (flags as 0/1), the level is
    stored by its label, and the level of service is left out (it follows from the numbers).
    """
    if isinstance(record, ZoneMetrics):
        kind, target = "zone", record.zone
    elif isinstance(record, LineMetrics):
        kind, target = "line", record.line
    else:
        raise TypeError(f"not a metrics record: {record!r}")
    values = {name: finite_number(value) for name, value in record.alert_inputs().items()}
    return MetricSample(
        camera=record.camera,
        zone=target,
        time=clock.wall(record.time_s),
        values=values,
        kind=kind,
        frame_index=record.frame_index,
        level=record.level.label,
        run_id=run_id,
    )


class StoreAlertSink:
    """An :class:`~crowdwatch.alerts.AlertSink` that upserts every alert event into a store.

    Example:
        >>> from crowdwatch.store import open_store
        >>> sink = StoreAlertSink(open_store(":memory:"), WallClock(1e9))
        >>> sink.close()
    """

    def __init__(
        self,
        store: SqlStore,
        clock: WallClock | None = None,
        close_store: bool = False,
        snapshot_folder: str | os.PathLike[str] | None = None,
        run_id: str | None = None,
        spool: StoreSpool | None = None,
    ):
        self.store = store
        self.clock = clock or WallClock()
        self.close_store = close_store
        self.run_id = run_id
        self.snapshot_prefix = _snapshot_prefix(store, snapshot_folder)
        self.spool = spool

    def emit(self, event: AlertEvent) -> None:
        """Write the alert's state after the event (opened, closed or acknowledged).

        A relative snapshot path (relative to ``snapshot_folder``) is stored relative to the
        store's folder (absolute for PostgreSQL), so the console can find the file.
        """
        record = alert_at_wall_time(event.record, self.clock)
        if record.snapshot and self.snapshot_prefix and not os.path.isabs(record.snapshot):
            record.snapshot = os.path.join(self.snapshot_prefix, record.snapshot)
        if self.spool is None:
            self.store.upsert_alert(record, run_id=self.run_id)
            return
        data = record.to_dict()
        if self.run_id is not None:
            data["run_id"] = self.run_id
        self.spool.write(self.store, "alert", data)

    def close(self) -> None:
        """Write what the spool holds (if the store is back), close the store if owned."""
        if self.spool is not None:
            _final_flush(self.spool, self.store)
        if self.close_store:
            self.store.close()


class StoreMetricsWriter:
    """Writes each analysed frame's metrics records to a store, one transaction per frame,
    each sample carrying the run's id."""

    def __init__(
        self,
        store: SqlStore,
        clock: WallClock | None = None,
        run_id: str | None = None,
        spool: StoreSpool | None = None,
    ) -> None:
        self.store = store
        self.clock = clock or WallClock()
        self.run_id = run_id
        self.spool = spool

    def write(self, records: Iterable[MetricsRecord]) -> int:
        """Store one frame's records (zones and lines); returns how many (also when they were
        spooled because the store is unavailable: they are written once it is back)."""
        samples = [metric_sample(record, self.clock, self.run_id) for record in records]
        if self.spool is None:
            return self.store.write_metrics(samples)
        if samples:
            self.spool.write(self.store, "metrics", samples)
        return len(samples)

    def close(self) -> None:
        """Write what the spool holds, if the store is back (else it stays in the spool file
        for the next run of the camera)."""
        if self.spool is not None:
            _final_flush(self.spool, self.store)


def _final_flush(spool: StoreSpool, store: SqlStore) -> None:
    if not spool.flush(store):
        log.error(
            "the store is still unavailable: %d write(s) stay in %s and are written the next "
            "time this camera runs",
            spool.pending,
            spool.path,
        )


def _snapshot_prefix(store: SqlStore, folder: str | os.PathLike[str] | None) -> str | None:
    if folder is None:
        return None
    folder = Path(folder).resolve()
    return str(folder) if store.folder is None else os.path.relpath(folder, store.folder)


def finite_number(value: Any) -> float | None:
    """``value`` as a float, None when it is missing or not finite (the store keeps no NaN)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
