"""The estimator section of the event config: which people estimator to run."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_TILES = 16


class SparseGateConfig(BaseModel):
    """The density model gated by the SSD person detector in near-empty scenes
    (``crowdwatch/estimators/sparse_gate.py``): on a frame the density model counts below
    ``below`` people where the detector finds at least ``agreement`` x that many, the density is
    kept around the detections (``score_threshold`` and up) and capped at their number."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    below: float = Field(default=20.0, gt=0)
    agreement: float = Field(default=0.7, gt=0, le=1)
    score_threshold: float = Field(default=0.3, gt=0, lt=1)


class EstimatorConfig(BaseModel):
    """Which people estimator to run.

    ``auto`` uses the shipped density model when it is installed and the SSD detector otherwise.
    ``device: cuda`` runs the density model on onnxruntime's CUDA provider (the ``gpu`` extra),
    and ``max_batch`` > 1 lets the live engine put up to that many cameras' frames (of one size)
    into one model call, waiting at most ``batch_wait_ms`` for them: what a GPU wants. On the
    CPU the default, one frame a call with calls side by side, is faster. ``sparse_gate`` (off
    by default) lets the SSD detector correct the density model in near-empty scenes.
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
    device: Literal["cpu", "cuda"] = "cpu"
    max_batch: int = Field(default=1, ge=1, le=64)
    batch_wait_ms: float = Field(default=20.0, ge=0, le=1000)
    sparse_gate: SparseGateConfig | None = None

    @model_validator(mode="after")
    def _device_needs_density(self) -> EstimatorConfig:
        if self.kind in ("ssd", "yolo") and (self.device != "cpu" or self.max_batch > 1):
            raise ValueError(
                f"device and max_batch apply to the density model, not the {self.kind} estimator"
            )
        if self.kind in ("ssd", "yolo") and self.sparse_gate is not None:
            raise ValueError(f"sparse_gate gates the density model, not the {self.kind} estimator")
        return self
