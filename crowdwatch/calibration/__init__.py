"""Ground-plane calibration and people per m²."""

from crowdwatch.calibration.homography import (
    CalibrationError,
    GroundCalibration,
    birds_eye_size,
    shoelace_area,
)
from crowdwatch.calibration.metric_density import (
    GroundDensityMapper,
    GroundGrid,
    density_per_m2,
    zone_density,
)

__all__ = [
    "CalibrationError",
    "GroundCalibration",
    "GroundDensityMapper",
    "GroundGrid",
    "birds_eye_size",
    "density_per_m2",
    "shoelace_area",
    "zone_density",
]
