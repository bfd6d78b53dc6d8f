"""Plain data types shared by every stage: the spine of the per-frame path.

Data flows one way: source -> estimator -> metrics -> alerts -> store -> console. A source yields
:class:`Frame`; an estimator returns one :class:`Estimate` (the role supervision's
``Detections`` plays: every zone, heat map and annotator takes it); the analysis of one frame is
one :class:`FrameResult` holding a :class:`ZoneMetrics` per zone and a :class:`LineMetrics` per
counting line, each with its alert :class:`Level`. All of them are frozen and built by keyword.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from enum import Enum, IntEnum
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the alert types live with the alert engine; only their names are used here
    from crowdwatch.alerts.records import AlertEvent


class Level(IntEnum):
    """Alert levels in order of severity; ``NORMAL`` means no alert is open.

    Printed and stored by their lower-case label.

    Example:
        >>> Level.from_name("warning") > Level.ADVISORY
        True
        >>> Level.CRITICAL.label, f"{Level.WARNING}"
        ('critical', 'warning')
    """

    NORMAL = 0
    ADVISORY = 1
    WARNING = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        """The lower-case name used in YAML, alert records, CSV files and the store."""
        return self.name.lower()

    def __str__(self) -> str:
        return self.label

    def __format__(self, spec: str) -> str:
        return format(self.label, spec)

    @classmethod
    def from_name(cls, name: str | Level) -> Level:
        """Parse ``"advisory"``, ``"warning"``, ``"critical"`` or ``"normal"`` (any case)."""
        if isinstance(name, Level):
            return name
        try:
            return cls[name.strip().upper()]
        except KeyError:
            names = ", ".join(level.label for level in cls)
            raise ValueError(f"unknown alert level {name!r}; expected one of: {names}") from None


class Anchor(str, Enum):
    """Where an estimator puts a person: calibrated measures need it to find the ground.

    ``FEET``: detectors (the bottom-centre of each box, on the ground). ``HEAD``: density models
    trained on head annotations (about 1.7 m above the ground).
    """

    FEET = "feet"
    HEAD = "head"


@dataclass(frozen=True)
class Frame:
    """One decoded video frame and where it sits in its source.

    Attributes:
        image: BGR uint8 array of shape (H, W, 3), as OpenCV decodes it.
        index: 0-based index of the frame in its source.
        time_s: seconds since the start of the source (video time for files, wall time for live).
        source: a printable name of the source (path, URL or camera name).
    """

    image: np.ndarray
    index: int
    time_s: float
    source: str = ""

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])


@dataclass(frozen=True, kw_only=True)
class Estimate:
    """What an estimator sees in one frame.

    ``density`` is a float32 map with the frame's height and width whose sum is the number of
    people; ``points`` are people positions in pixels (x, y), used for drawing, tracking and
    counting lines. ``anchor`` says where on a person those positions and the density's mass
    sit (required: no stage may guess it). Detectors fill ``boxes`` and ``scores`` too,
    trackers ``track_ids``.

    Example:
        >>> import numpy as np
        >>> density = np.zeros((4, 6), np.float32); density[1, 2] = 1.0
        >>> Estimate(density=density, anchor=Anchor.HEAD).count
        1.0
    """

    density: np.ndarray
    anchor: Anchor
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    boxes: np.ndarray | None = None
    scores: np.ndarray | None = None
    track_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.anchor, Anchor):
            object.__setattr__(self, "anchor", Anchor(self.anchor))

    @property
    def count(self) -> float:
        """Estimated number of people in the frame (the density map's mass)."""
        return float(self.density.sum(dtype=np.float64))

    def count_in(self, mask: np.ndarray) -> float:
        """Estimated number of people inside a boolean mask of the frame's shape."""
        return float(self.density[mask].sum(dtype=np.float64))


@dataclass(frozen=True, kw_only=True)
class ZoneMetrics:
    """What was measured in one zone of one frame.

    Attributes:
        camera, zone: whose zone; frame_index, time_s: which frame (stream seconds).
        count: people in the zone.
        area_m2: walkable ground area, m²; None without calibration or a configured area.
        density: people per m² of ground, count / area_m2 (None when the area is unknown).
        occupancy: count / capacity (None without a capacity).
        level_of_service: Fruin walkway level (A-F) of the density.
        mean_speed: people-weighted mean ground speed, m/s (calibrated cameras).
        flow_rate: specific flow, density x speed, people per metre per minute.
        pressure: crowd pressure, density x local velocity variance, 1/s² (Helbing et al.).
        rise_rate: how fast the zone fills: people/m² per minute (people per minute uncalibrated).
        minutes_to_limit: forecast minutes until the zone's limit density at the current trend;
            None when it is not rising.
        stalled: density rising while the flow falls (the signature before crowd turbulence).
        level: the zone's current alert level.
    """

    camera: str
    zone: str
    frame_index: int
    time_s: float
    count: float
    area_m2: float | None = None
    density: float | None = None
    occupancy: float | None = None
    level_of_service: str | None = None
    mean_speed: float | None = None
    flow_rate: float | None = None
    pressure: float | None = None
    rise_rate: float | None = None
    minutes_to_limit: float | None = None
    stalled: bool = False
    level: Level = Level.NORMAL

    @property
    def target(self) -> str:
        """The alert engine's id for this zone."""
        return f"{self.camera}/{self.zone}"

    def alert_inputs(self) -> dict[str, float | None]:
        """The values alert rules can watch (every measured number, flags as 0/1)."""
        return _measured(self)

    def as_row(self) -> dict[str, object]:
        """A flat dict for CSV, rounded for readability."""
        return _row(self)

    def with_level(self, level: Level) -> ZoneMetrics:
        """The same record at another alert level."""
        return replace(self, level=level)


@dataclass(frozen=True, kw_only=True)
class LineMetrics:
    """The flow across one counting line at one analysed frame.

    Attributes:
        camera, line: whose line; frame_index, time_s: which frame (stream seconds).
        length_m: the line's length on the ground, m.
        flow_in, flow_out: people per metre of line per minute towards the positive ("in") and
            the other side, over the interval since the previous analysed frame.
        flow_rate: both directions together, people/m/min (what flow rules watch).
        crossed_in, crossed_out: people that crossed each way since the start (cumulative).
        level: the line's current alert level.
    """

    camera: str
    line: str
    frame_index: int
    time_s: float
    length_m: float
    flow_in: float
    flow_out: float
    flow_rate: float
    crossed_in: float
    crossed_out: float
    level_of_service: str | None = None
    level: Level = Level.NORMAL

    @property
    def target(self) -> str:
        """The alert engine's id for this line."""
        return f"{self.camera}/{self.line}"

    def alert_inputs(self) -> dict[str, float | None]:
        """The values alert rules can watch."""
        return _measured(self)

    def as_row(self) -> dict[str, object]:
        """A flat dict for CSV, rounded for readability."""
        return _row(self)

    def with_level(self, level: Level) -> LineMetrics:
        """The same record at another alert level."""
        return replace(self, level=level)


MetricsRecord = ZoneMetrics | LineMetrics


@dataclass(frozen=True, kw_only=True)
class FrameResult:
    """Everything one analysed frame produced: what every output of a run is made from.

    ``heat`` is the live heat map in people per pixel. Calibrated cameras only: ``ground_m2`` is
    the frame's people per m² on the ground grid (the bird's-eye view, ``cell_m`` metres a cell);
    the camera's ``GroundDensityMapper.grid_to_image`` reads it back at each pixel for display.
    """

    frame: Frame
    estimate: Estimate
    heat: np.ndarray
    zones: tuple[ZoneMetrics, ...]
    lines: tuple[LineMetrics, ...] = ()
    events: tuple[AlertEvent, ...] = ()
    estimator_ms: float = 0.0
    ground_m2: np.ndarray | None = None
    cell_m: float | None = None

    @property
    def records(self) -> tuple[MetricsRecord, ...]:
        """Every metrics record of the frame: its zones, then its counting lines."""
        return (*self.zones, *self.lines)

    def with_image(self, image: np.ndarray) -> FrameResult:
        """The same result showing another picture of its frame (e.g. people pixelated)."""
        return replace(self, frame=replace(self.frame, image=image))


# Fields of a record that name it rather than measure it.
_IDENTITY = {"camera", "zone", "line", "frame_index", "time_s", "level", "level_of_service"}


def _measured(record: MetricsRecord) -> dict[str, float | None]:
    values: dict[str, float | None] = {}
    for item in fields(record):
        value = getattr(record, item.name)
        if item.name in _IDENTITY or not (value is None or isinstance(value, int | float)):
            continue
        values[item.name] = None if value is None else float(value)
    return values


def _row(record: MetricsRecord) -> dict[str, object]:
    row = asdict(record)
    for key, value in row.items():
        if isinstance(value, Level):
            row[key] = value.label
        elif isinstance(value, bool):
            row[key] = int(value)
        elif isinstance(value, float):
            row[key] = round(value, 4) if math.isfinite(value) else ""
        elif value is None:
            row[key] = ""
    row["time_s"] = round(record.time_s, 3)
    return row
