"""Checks of a camera's geometry against its frames: zones, lines and calibration in view.

Run by ``crowdwatch config check`` (which opens each camera's analysed source for its frame
size) and by every analysis once its first frame gives the size, so ``analyze`` and the live
engine refuse the same configs that ``config check`` reports. Both check the camera as it is
analysed: its coordinates scaled to the analysed frames (a substream's) when those differ from
the ``frame_size`` they were drawn on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from crowdwatch.calibration import CalibrationError, GroundCalibration
from crowdwatch.calibration.raised import focal_length_px
from crowdwatch.calibration.settings import build_calibration
from crowdwatch.config.scaling import analysed_source, camera_for_frames, frame_scale
from crowdwatch.config.schema import CameraConfig, EventConfig, Point
from crowdwatch.errors import SourceError
from crowdwatch.sources import VideoFileSource, open_source
from crowdwatch.sources.video import _redact
from crowdwatch.venue import camera_footprint, venue_problems

FrameSizeProbe = Callable[[CameraConfig], tuple[int, int]]


def probe_frame_size(camera: CameraConfig) -> tuple[int, int]:
    """(width, height) of the frames a camera's analysis reads: its ``analysis_source``'s
    (read from one frame), else its ``frame_size``, else its source's first frame's."""
    if camera.analysis_source is None and camera.frame_size is not None:
        return camera.frame_size
    return _first_frame_size(analysed_source(camera))


def drawn_frame_size(camera: CameraConfig) -> tuple[int, int]:
    """(width, height) of the frames a camera's pixel coordinates are drawn in: its
    ``frame_size`` (the main stream's), else its source's first frame's."""
    if camera.frame_size is not None:
        return camera.frame_size
    return _first_frame_size(camera.source)


def _first_frame_size(spec: str | int) -> tuple[int, int]:
    with open_source(spec) as source:
        if isinstance(source, VideoFileSource):
            image = source.first_frame
        else:
            image = next(iter(source)).image
    return int(image.shape[1]), int(image.shape[0])


@dataclass(frozen=True, kw_only=True)
class AnalysedView:
    """What one camera's analysis reads: which source, at what frame size, and the camera with
    its pixel coordinates scaled to those frames (``analysed``)."""

    camera: CameraConfig
    width: int
    height: int

    @cached_property
    def analysed(self) -> CameraConfig:
        """The camera in the analysed frames' pixels."""
        return camera_for_frames(self.camera, width=self.width, height=self.height)

    @property
    def scaled(self) -> bool:
        """True when the analysed frames are not the frames the coordinates are drawn on."""
        return self.analysed is not self.camera

    def describe(self) -> str:
        """One line: the source analysed, its frame size and the scale of the coordinates."""
        which = "analysis_source" if self.camera.analysis_source is not None else "source"
        source = analysed_source(self.camera)
        shown = f"webcam {source}" if isinstance(source, int) else _redact(str(source))
        size = f"{self.width}x{self.height}"
        text = f"camera {self.camera.name}: analyses its {which} {shown} at {size}"
        if not self.scaled:
            return text
        sx, sy = frame_scale(self.camera, width=self.width, height=self.height)
        drawn_w, drawn_h = self.camera.frame_size
        return f"{text}, its coordinates scaled x {sx:.4g}, y {sy:.4g} from {drawn_w}x{drawn_h}"


@dataclass
class FrameCheck:
    """:func:`check_frames`' findings: one ``- ...`` line per problem, and the view of every
    camera whose frames could be read."""

    problems: list[str] = field(default_factory=list)
    views: list[AnalysedView] = field(default_factory=list)


def check_against_frames(
    config: EventConfig, probe: FrameSizeProbe = probe_frame_size
) -> list[str]:
    """Every problem that needs a camera's frame size to see, one line each (see
    :func:`check_frames`)."""
    return check_frames(config, probe).problems


def check_frames(config: EventConfig, probe: FrameSizeProbe = probe_frame_size) -> FrameCheck:
    """Each camera's geometry checked as its analysis will see it: scaled to the frames it
    analyses (its ``analysis_source``'s when given), against their size.

    A camera whose source cannot be opened is reported and its geometry left unchecked.
    """
    found = FrameCheck()
    for index, camera in enumerate(config.cameras):
        where = f"cameras[{index}] ({camera.name})"
        try:
            width, height = probe(camera)
        except (SourceError, StopIteration) as exc:
            found.problems.append(f"- {where}: cannot read a frame to check geometry: {exc}")
            continue
        view = AnalysedView(camera=camera, width=width, height=height)
        found.views.append(view)
        if view.scaled:
            where += f" (scaled to its {width}x{height} analysed frames)"
        found.problems.extend(
            geometry_problems(view.analysed, width=width, height=height, where=where)
        )
    if config.venue is not None and not found.problems:
        found.problems.extend(_venue_problems(config, found.views))
    return found


def _venue_problems(config: EventConfig, views: list[AnalysedView]) -> list[str]:
    """The venue against the cameras' ground footprints: zones nobody sees, gates outside every
    view, implausible footprints (see :func:`crowdwatch.venue.venue_problems`)."""
    footprints = {}
    for view in views:
        calibration = build_calibration(view.analysed.calibration)
        footprints[view.camera.name] = (
            camera_footprint(calibration, view.width, view.height) if calibration else None
        )
    lines = {camera.name: [line.name for line in camera.lines] for camera in config.cameras}
    return [
        f"- venue {config.venue.name!r}: {problem.removeprefix('- ')}"
        for problem in venue_problems(config.venue, footprints, camera_lines=lines)
    ]


def geometry_problems(
    camera: CameraConfig, *, width: int, height: int, where: str | None = None
) -> list[str]:
    """Zones, lines and calibration points outside a ``width`` x ``height`` frame, a calibration
    that cannot be fitted, and zones it cannot measure; one ``- ...`` line each."""
    where = where or f"camera {camera.name!r}"
    problems = []
    for zone in camera.zones:
        problems += _outside(zone.polygon, f"{where} zone {zone.name!r}", width, height)
    for line in camera.lines:
        problems += _outside([line.start, line.end], f"{where} line {line.name!r}", width, height)
    if camera.calibration is not None:
        image_points = camera.calibration.image_points or camera.calibration.rectangle or []
        problems += _outside(image_points, f"{where} calibration", width, height)
        problems += _calibration_problems(camera, where)
    return problems


def _calibration_problems(camera: CameraConfig, where: str) -> list[str]:
    """A calibration that cannot be fitted, and zones it cannot measure (above the horizon)."""
    try:
        calibration = build_calibration(camera.calibration)
    except CalibrationError as exc:
        return [f"- {where} calibration: {exc}"]
    problems = []
    for zone in camera.zones:
        try:
            calibration.polygon_area_m2(zone.polygon)
        except CalibrationError as exc:
            problems.append(f"- {where} zone {zone.name!r}: {exc}")
    return problems


def _outside(points: list[Point], what: str, width: int, height: int) -> list[str]:
    bad = [(x, y) for x, y in points if not (0 <= x <= width and 0 <= y <= height)]
    if not bad:
        return []
    shown = ", ".join(f"({x:g}, {y:g})" for x, y in bad[:3])
    more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
    return [f"- {what}: point(s) {shown}{more} lie outside the {width}x{height} frame"]


@dataclass
class CalibrationReport:
    """Fit errors, zone areas and line lengths of one calibrated camera.

    ``problems`` lists zones or lines the calibration cannot measure (for example a zone drawn
    above the horizon); the report is still useful for the rest.
    """

    camera: str
    rms_error_m: float
    max_error_m: float
    point_errors_m: list[float]
    focal_length_px: float | None
    zone_areas_m2: dict[str, float] = field(default_factory=dict)
    line_lengths_m: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report as printable lines."""
        text = [
            f"camera {self.camera}: fit error RMS {self.rms_error_m:.3f} m, "
            f"max {self.max_error_m:.3f} m over {len(self.point_errors_m)} points",
            "  per point (m): " + ", ".join(f"{e:.3f}" for e in self.point_errors_m),
        ]
        if self.focal_length_px is not None:
            text.append(f"  implied focal length: {self.focal_length_px:.0f} px")
        text += [f"  zone {name}: {area:.1f} m²" for name, area in self.zone_areas_m2.items()]
        text += [f"  line {name}: {length:.2f} m" for name, length in self.line_lengths_m.items()]
        text += [f"  problem: {problem}" for problem in self.problems]
        return text


def calibration_report(
    camera: CameraConfig, calibration: GroundCalibration, frame_size: tuple[int, int]
) -> CalibrationReport:
    """Check a camera's calibration against its zones and lines."""
    try:
        focal = focal_length_px(calibration, *frame_size)
    except CalibrationError:
        focal = None
    report = CalibrationReport(
        camera.name,
        calibration.rms_error_m,
        calibration.max_error_m,
        list(calibration.point_errors_m),
        focal,
    )
    for zone in camera.zones:
        try:
            report.zone_areas_m2[zone.name] = calibration.polygon_area_m2(np.array(zone.polygon))
        except CalibrationError as exc:
            report.problems.append(f"zone {zone.name!r}: {exc}")
    for line in camera.lines:
        length = calibration.segment_length_m(line.start, line.end)
        if np.isfinite(length):
            report.line_lengths_m[line.name] = length
        else:
            report.problems.append(f"line {line.name!r} reaches above the horizon")
    return report
