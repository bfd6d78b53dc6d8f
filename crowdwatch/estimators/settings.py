"""The estimator section of the event config: which people estimator to run."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_TILES = 16


class EstimatorConfig(BaseModel):
    """Which people estimator to run.

    ``auto`` uses the shipped density model when it is installed and the SSD detector otherwise.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    kind: Literal["auto", "density", "ssd", "yolo"] = "auto"
    model: str | None = None
    score_threshold: float = Field(default=0.3, gt=0, lt=1)
    # Columns x rows of tiles a large frame is split into for the detector (1 to 16 each).
    tiles: tuple[
        Annotated[int, Field(ge=1, le=MAX_TILES)], Annotated[int, Field(ge=1, le=MAX_TILES)]
    ] = (1, 1)
    track: bool = False
