"""The calibration section of a camera's config, and the calibration it describes."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from crowdwatch.calibration.homography import GroundCalibration

# Image coordinates (pixels) and ground coordinates (metres) beyond these are typing errors
# (1e200 would overflow the fit): refused by name instead of failing deep inside the maths.
MAX_PIXEL_COORDINATE = 100_000.0
MAX_GROUND_METRES = 100_000.0
MAX_CALIBRATION_POINTS = 1_000

Pixel = Annotated[float, Field(ge=-MAX_PIXEL_COORDINATE, le=MAX_PIXEL_COORDINATE)]
Metres = Annotated[float, Field(ge=-MAX_GROUND_METRES, le=MAX_GROUND_METRES)]
Point = tuple[Pixel, Pixel]
GroundPoint = tuple[Metres, Metres]


class CalibrationConfig(BaseModel):
    """Ground-plane calibration: image points and where they lie on the ground, in metres.

    Either ``image_points`` with ``ground_points`` (four or more pairs), or ``rectangle``: the
    four image corners of a ground rectangle ``width_m`` x ``depth_m``, in order around it.
    ``head_height_m`` is where estimators that see heads (the density model) place people: their
    mass is projected to the ground through the plane of heads at that height (0 turns it off).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    image_points: list[Point] | None = Field(default=None, max_length=MAX_CALIBRATION_POINTS)
    ground_points: list[GroundPoint] | None = Field(default=None, max_length=MAX_CALIBRATION_POINTS)
    rectangle: list[Point] | None = None
    width_m: float | None = Field(default=None, gt=0, le=MAX_GROUND_METRES)
    depth_m: float | None = Field(default=None, gt=0, le=MAX_GROUND_METRES)
    head_height_m: float = Field(default=1.7, ge=0, le=3)

    @model_validator(mode="after")
    def _one_form(self) -> CalibrationConfig:
        pairs = self.image_points is not None or self.ground_points is not None
        rectangle = self.rectangle is not None
        if pairs == rectangle:
            raise ValueError("give either image_points + ground_points, or rectangle")
        if pairs:
            image, ground = self.image_points or [], self.ground_points or []
            if len(image) != len(ground):
                raise ValueError(
                    f"{len(image)} image_points but {len(ground)} ground_points: they must pair up"
                )
            if len(image) < 4:
                raise ValueError(f"calibration needs at least 4 point pairs, got {len(image)}")
        elif len(self.rectangle or []) != 4 or self.width_m is None or self.depth_m is None:
            raise ValueError("rectangle needs exactly 4 image corners, width_m and depth_m")
        return self


def build_calibration(config: CalibrationConfig | None) -> GroundCalibration | None:
    """The camera's ground-plane calibration from its config section, if it has one."""
    if config is None:
        return None
    if config.rectangle is not None:
        return GroundCalibration.from_rectangle(config.rectangle, config.width_m, config.depth_m)
    return GroundCalibration.from_points(config.image_points, config.ground_points)
