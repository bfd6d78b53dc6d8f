"""Running totals of an analysis, written as ``summary.json``."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from crowdwatch.metrics.records import LineMetrics, ZoneMetrics


@dataclass
class ZoneSummary:
    """Peaks and means of one zone over a run."""

    zone: str
    area_m2: float | None = None
    frames: int = 0
    mean_count: float = 0.0
    peak_count: float = 0.0
    peak_count_time_s: float | None = None
    peak_density: float | None = None
    peak_density_time_s: float | None = None
    peak_pressure: float | None = None
    stalled_frames: int = 0
    alerts: dict[str, int] = field(default_factory=dict)

    def add(self, record: ZoneMetrics) -> None:
        self.frames += 1
        self.area_m2 = record.area_m2
        self.mean_count += (record.count - self.mean_count) / self.frames
        if self.peak_count_time_s is None or record.count > self.peak_count:
            self.peak_count, self.peak_count_time_s = record.count, record.time_s
        if record.density is not None and (
            self.peak_density is None or record.density > self.peak_density
        ):
            self.peak_density, self.peak_density_time_s = record.density, record.time_s
        if record.pressure is not None:
            self.peak_pressure = max(self.peak_pressure or 0.0, record.pressure)
        self.stalled_frames += int(record.stalled)


@dataclass
class LineSummary:
    """Crossings and peak flow of one counting line over a run."""

    line: str
    length_m: float = 0.0
    crossed_in: float = 0.0
    crossed_out: float = 0.0
    peak_flow_rate: float = 0.0
    peak_flow_time_s: float | None = None

    def add(self, record: LineMetrics) -> None:
        self.length_m = record.length_m
        self.crossed_in, self.crossed_out = record.crossed_in, record.crossed_out
        if record.flow_rate > self.peak_flow_rate:
            self.peak_flow_rate, self.peak_flow_time_s = record.flow_rate, record.time_s


@dataclass
class RunSummary:
    """What ``crowdwatch analyze`` reports at the end (and on the way, if it is interrupted)."""

    source: str
    camera: str
    estimator: str
    frames_in_source: int | None = None
    frames_analysed: int = 0
    first_time_s: float | None = None
    last_time_s: float | None = None
    mean_count: float = 0.0
    peak_count: float = 0.0
    peak_count_time_s: float | None = None
    zones: dict[str, ZoneSummary] = field(default_factory=dict)
    lines: dict[str, LineSummary] = field(default_factory=dict)
    alerts_by_level: Counter = field(default_factory=Counter)
    wall_seconds: float = 0.0
    estimator_ms_per_frame: float = 0.0
    completed: bool = False
    error: str | None = None
    # What produced the run: run_id, config file and hash, model file and hash, version.
    provenance: dict[str, Any] = field(default_factory=dict)

    def add_frame(
        self,
        time_s: float,
        total: float,
        zones: list[ZoneMetrics],
        lines: list[LineMetrics] = (),
    ) -> None:
        """Fold one analysed frame into the totals."""
        self.frames_analysed += 1
        self.first_time_s = time_s if self.first_time_s is None else self.first_time_s
        self.last_time_s = time_s
        self.mean_count += (total - self.mean_count) / self.frames_analysed
        if self.peak_count_time_s is None or total > self.peak_count:
            self.peak_count, self.peak_count_time_s = total, time_s
        for record in zones:
            self.zones.setdefault(record.zone, ZoneSummary(record.zone)).add(record)
        for record in lines:
            self.lines.setdefault(record.line, LineSummary(record.line)).add(record)

    def add_alert(self, zone: str, level: str) -> None:
        """Count an alert that opened (on a zone or a line)."""
        self.alerts_by_level[level] += 1
        if zone in self.zones:
            counts = self.zones[zone].alerts
            counts[level] = counts.get(level, 0) + 1

    @property
    def analysed_fps(self) -> float:
        """Frames analysed per second of wall time."""
        return self.frames_analysed / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["alerts_by_level"] = dict(self.alerts_by_level)
        data["analysed_fps"] = round(self.analysed_fps, 3)
        return _rounded(data)


def _rounded(value: Any) -> Any:
    """Floats rounded; NaN and infinities (a zone at absurd coordinates) become null, so
    ``summary.json`` is always valid, finite JSON."""
    if isinstance(value, float):
        return round(value, 4) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value
