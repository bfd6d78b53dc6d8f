"""Checks of a valid configuration against the real cameras: frame sizes, zones in view."""

from __future__ import annotations

from collections.abc import Callable

from crowdwatch.config.schema import CameraConfig, EventConfig, Point
from crowdwatch.errors import SourceError
from crowdwatch.sources import VideoFileSource, open_source

FrameSizeProbe = Callable[[CameraConfig], tuple[int, int]]


def probe_frame_size(camera: CameraConfig) -> tuple[int, int]:
    """(width, height) of a camera's frames: from the config, else by reading one frame."""
    if camera.frame_size is not None:
        return camera.frame_size
    with open_source(camera.source) as source:
        if isinstance(source, VideoFileSource):
            image = source.first_frame
        else:
            image = next(iter(source)).image
    return int(image.shape[1]), int(image.shape[0])


def check_against_frames(
    config: EventConfig, probe: FrameSizeProbe = probe_frame_size
) -> list[str]:
    """Every problem that needs a camera's frame size to see, one line each.

    A camera whose source cannot be opened is reported and its geometry left unchecked.
    """
    problems: list[str] = []
    for index, camera in enumerate(config.cameras):
        where = f"cameras[{index}] ({camera.name})"
        try:
            width, height = probe(camera)
        except (SourceError, StopIteration) as exc:
            problems.append(f"- {where}: cannot read a frame to check geometry: {exc}")
            continue
        problems.extend(_geometry_problems(camera, where, width, height))
    return problems


def _geometry_problems(camera: CameraConfig, where: str, width: int, height: int) -> list[str]:
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
    from crowdwatch.calibration import CalibrationError
    from crowdwatch.pipeline.scene import build_calibration

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
