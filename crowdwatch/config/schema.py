"""The event configuration: cameras with zones, lines and calibration; estimator; heat map.

Pydantic models forbid unknown keys so that a misspelt key is reported instead of ignored.
Each model validates what it can see alone (polygon shape, point counts); checks that need the
frame size (a zone outside the frame) live in :mod:`crowdwatch.pipeline.geometry`. The
sections of one stage (calibration, estimator, alert rules) are defined by that stage.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from shapely.geometry import Polygon
from shapely.validation import explain_validity

from crowdwatch.alerts.rules import AlertRule
from crowdwatch.calibration.settings import CalibrationConfig, Point
from crowdwatch.estimators.settings import EstimatorConfig
from crowdwatch.venue.settings import VenueConfig

# Maxima: beyond them a config is a mistake (or an attack), and would make every frame slow.
MAX_CAMERAS = 256
MAX_ZONES = 200  # per camera
MAX_LINES = 200  # per camera
MAX_POLYGON_POINTS = 1_000
MAX_RULES = 32  # per zone or line
MAX_WEBHOOKS = 16
MAX_DEVICE_INDEX = 63  # webcams /dev/video0 .. /dev/video63
MAX_FRAME_SIDE = 16_384

# Metrics a zone can only measure with its ground area (area_m2 or the camera's calibration),
# and those that need the calibration itself (speeds come from the ground plane).
AREA_METRICS = frozenset({"density", "pressure", "minutes_to_limit"})
CALIBRATED_ZONE_METRICS = frozenset({"pressure", "flow_rate"})

__all__ = [
    "CalibrationConfig",
    "CameraConfig",
    "EstimatorConfig",
    "EventConfig",
    "HeatmapConfig",
    "LineConfig",
    "Point",
    "PrivacyConfig",
    "RecordingConfig",
    "VenueConfig",
    "WebhookConfig",
    "ZoneConfig",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ZoneConfig(_Strict):
    """A polygon of the image with its own alert rules.

    Attributes:
        name: unique within the camera.
        polygon: three or more (x, y) image pixels, in order around the zone.
        area_m2: walkable ground area; overrides the area computed from the camera's calibration.
        capacity: people the zone is meant to hold, for ``occupancy`` rules.
        limit_density: people per m² the ``minutes_to_limit`` forecast counts down to (default 4,
            G. K. Still's critical density).
        alerts: the zone's rules. Empty means the literature defaults for density when the zone's
            area is known, and no alerts otherwise.
    """

    name: str = Field(min_length=1)
    polygon: list[Point] = Field(min_length=3, max_length=MAX_POLYGON_POINTS)
    area_m2: float | None = Field(default=None, gt=0, le=1e9)
    capacity: int | None = Field(default=None, gt=0, le=10_000_000)
    limit_density: float = Field(default=4.0, gt=0, le=100)
    alerts: list[AlertRule] = Field(default_factory=list, max_length=MAX_RULES)

    @field_validator("polygon")
    @classmethod
    def _simple_polygon(cls, polygon: list[Point]) -> list[Point]:
        shape = Polygon(polygon)
        if not shape.is_valid:
            raise ValueError(
                f"polygon is self-intersecting or degenerate: {explain_validity(shape)}"
            )
        if shape.area <= 0:
            raise ValueError("polygon has no area (its points are collinear or repeated)")
        return polygon

    @model_validator(mode="after")
    def _unique_rule_names(self) -> ZoneConfig:
        _require_unique([rule.label for rule in self.alerts], f"alert rules of zone {self.name!r}")
        return self


class LineConfig(_Strict):
    """A counting line between two image points, drawn on the ground.

    Looking along start -> end in the image, crossings towards ``positive`` (``right`` by default)
    count as "in", the others as "out". Flow needs the camera's calibration.
    """

    name: str = Field(min_length=1)
    start: Point
    end: Point
    positive: Literal["left", "right"] = "right"
    alerts: list[AlertRule] = Field(default_factory=list, max_length=MAX_RULES)

    @model_validator(mode="after")
    def _has_length(self) -> LineConfig:
        if self.start == self.end:
            raise ValueError(f"line {self.name!r} has the same start and end point")
        return self


class CameraConfig(_Strict):
    """One camera: where its frames come from and what to measure in them.

    ``line_motion`` chooses what moves people across counting lines: ``density`` (the density
    maps' own motion; robust to people hiding each other while they stay apart) or ``image``
    (the frames' optical flow; for crowds too dense for separate blobs).

    ``source_fps`` is the true capture rate of a recording whose file states a wrong one (CCTV
    exports often say 25 or 30 for footage taken at 5 - 12 frames per second): video time, and
    with it every speed, flow rate and alert latch, comes from it instead of the container's rate
    (of the analysed stream: ``analysis_source`` when given).

    ``frame_size`` is the (width, height) in pixels of the frames the operator drew the camera's
    zones, lines and calibration points on: every pixel coordinate of the camera is in these
    pixels. Frames of another size are analysed with the coordinates scaled to them (see
    :func:`crowdwatch.config.scaling.camera_for_frames`).

    ``analysis_source`` is the same view at a lower resolution (a camera's substream, e.g.
    640x360 beside a 1280x720 main stream), analysed instead of ``source``: decoding it and
    running the estimator on it costs a fraction of the main stream. ``source`` stays the stream
    people watch and the one coordinates are drawn on, so ``frame_size`` (the main stream's size)
    is required with it.
    """

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    source: str | int
    analysis_source: str | None = None
    zones: list[ZoneConfig] = Field(default_factory=list, max_length=MAX_ZONES)
    lines: list[LineConfig] = Field(default_factory=list, max_length=MAX_LINES)
    calibration: CalibrationConfig | None = None
    analysis_fps: float | None = Field(default=None, gt=0, le=1000)
    source_fps: float | None = Field(default=None, gt=0, le=1000)
    frame_size: (
        tuple[
            Annotated[int, Field(ge=1, le=MAX_FRAME_SIDE)],
            Annotated[int, Field(ge=1, le=MAX_FRAME_SIDE)],
        ]
        | None
    ) = None
    line_motion: Literal["density", "image"] = "density"

    @field_validator("source", "analysis_source", mode="before")
    @classmethod
    def _device_or_path(cls, source: object) -> object:
        # A webcam is a device index 0..63 (a negative or huge index crashes OpenCV's opener);
        # anything else is a path or URL.
        if isinstance(source, bool):
            raise ValueError("must be a file path, stream URL or webcam index, not true/false")
        if isinstance(source, int) and not 0 <= source <= MAX_DEVICE_INDEX:
            raise ValueError(f"webcam index must be 0 to {MAX_DEVICE_INDEX}, got {source}")
        if isinstance(source, str):
            text = source.strip()
            if not text:
                raise ValueError("must not be empty")
            if text.lstrip("+-").isdigit() and not 0 <= int(text) <= MAX_DEVICE_INDEX:
                raise ValueError(f"webcam index must be 0 to {MAX_DEVICE_INDEX}, got {source}")
            if "\x00" in text:
                raise ValueError("must not contain a NUL character")
        return source

    @model_validator(mode="after")
    def _analysis_source_has_frame_size(self) -> CameraConfig:
        if self.analysis_source is not None and self.frame_size is None:
            raise ValueError(
                "analysis_source needs frame_size: the [width, height] of the main stream "
                "(source), whose pixels the zones, lines and calibration are drawn in, to scale "
                "them to the analysed frames"
            )
        return self

    @model_validator(mode="after")
    def _unique_names(self) -> CameraConfig:
        _require_unique([zone.name for zone in self.zones], f"zones of camera {self.name!r}")
        _require_unique([line.name for line in self.lines], f"lines of camera {self.name!r}")
        return self

    @model_validator(mode="after")
    def _rules_can_fire(self) -> CameraConfig:
        """A rule whose metric the camera can never measure is refused, naming what is missing:
        it would otherwise stay silent for the whole event."""
        problems = []
        calibrated = self.calibration is not None
        for zone in self.zones:
            for rule in zone.alerts:
                what = f"zone {zone.name!r}: its {rule.label!r} rule ({rule.metric})"
                if rule.metric in AREA_METRICS and zone.area_m2 is None and not calibrated:
                    problems.append(
                        f"{what} needs the zone's ground area: give the zone an area_m2 or "
                        f"the camera a calibration"
                    )
                elif rule.metric in CALIBRATED_ZONE_METRICS and not calibrated:
                    problems.append(f"{what} needs the camera's calibration")
                elif rule.metric == "occupancy" and zone.capacity is None:
                    problems.append(f"{what} needs the zone's capacity: give it a capacity")
        if not calibrated:
            for line in self.lines:
                for rule in line.alerts:
                    problems.append(
                        f"line {line.name!r}: its {rule.label!r} rule ({rule.metric}) needs the "
                        f"camera's calibration (counting lines are measured on the ground)"
                    )
        if problems:
            raise ValueError("; ".join(problems))
        return self


class HeatmapConfig(_Strict):
    """How the live heat map accumulates and is drawn."""

    half_life_s: float = Field(default=3.0, gt=0)
    opacity: float = Field(default=0.6, ge=0, le=1)


class PrivacyConfig(_Strict):
    """What crowdwatch keeps of the people it sees (it never identifies them)."""

    # Pixelate people in every image written: annotated video, alert snapshots, recordings.
    blur_people: bool = False


class RecordingConfig(_Strict):
    """How ``crowdwatch run --record`` records each camera (command-line flags override)."""

    segment_s: float = Field(default=60.0, gt=0)
    quota_gb: float = Field(default=2.0, gt=0)  # per camera; the oldest segments go first
    on_full: Literal["delete_oldest", "stop"] = "delete_oldest"
    snapshot_every_s: float = Field(default=10.0, gt=0)  # heat-map snapshots for replay
    preview_every_s: float = Field(default=1.0, ge=0)  # the console's live picture; 0: none
    max_width: int = Field(default=1280, ge=160)  # wider frames are scaled down first


class WebhookConfig(_Strict):
    """An HTTP endpoint that receives every alert event as a POST: the event as JSON, or
    (``format: cap``) an OASIS CAP 1.2 alert message for public warning systems."""

    url: str = Field(pattern=r"^https?://")
    format: Literal["json", "cap"] = "json"
    timeout_s: float = Field(default=5.0, gt=0)
    retries: int = Field(default=3, ge=0)


class EventConfig(_Strict):
    """Everything crowdwatch needs to watch one event."""

    name: str = Field(default="event", max_length=200)
    cameras: list[CameraConfig] = Field(min_length=1, max_length=MAX_CAMERAS)
    estimator: EstimatorConfig = Field(default_factory=EstimatorConfig)
    heatmap: HeatmapConfig = Field(default_factory=HeatmapConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    recording: RecordingConfig = Field(default_factory=RecordingConfig)
    webhooks: list[WebhookConfig] = Field(default_factory=list, max_length=MAX_WEBHOOKS)
    # All cameras on one site plan: their calibrations' ground points are venue metres.
    venue: VenueConfig | None = None

    @model_validator(mode="after")
    def _unique_cameras(self) -> EventConfig:
        _require_unique([camera.name for camera in self.cameras], "camera names")
        if self.venue is not None and self.venue.name in {c.name for c in self.cameras}:
            raise ValueError(
                f"venue name {self.venue.name!r} is also a camera's name: venue zones are stored "
                "as '<venue>/<zone>', so the two must differ"
            )
        return self

    def camera(self, name: str | None = None) -> CameraConfig:
        """The camera called ``name``, or the only camera when ``name`` is None."""
        if name is None:
            if len(self.cameras) > 1:
                names = ", ".join(c.name for c in self.cameras)
                raise KeyError(f"the config has several cameras ({names}); choose one")
            return self.cameras[0]
        for camera in self.cameras:
            if camera.name == name:
                return camera
        raise KeyError(f"no camera named {name!r} in the config")


def _require_unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    duplicates = sorted({name for name in names if name in seen or seen.add(name)})
    if duplicates:
        raise ValueError(f"duplicate {what}: {', '.join(duplicates)}")
