"""What a camera's calibration implies, for a person to check before trusting it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from crowdwatch.calibration.homography import CalibrationError, GroundCalibration
from crowdwatch.calibration.raised import focal_length_px
from crowdwatch.config.schema import CameraConfig


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
