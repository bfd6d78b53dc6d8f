"""Dense optical flow between frames, the crowd's velocity field, and ground speeds in m/s.

Flow is computed on a reduced copy of the frame (half size by default) with OpenCV's DIS, refined
down to that copy's own resolution: about 13-18 ms per 768x576 frame on one core, and it follows
person-sized walkers exactly (DIS's presets stop a pyramid level higher, which saves time but
halves the speed of small people moving over a static background).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import cv2
import numpy as np

from crowdwatch.calibration.homography import GroundCalibration

FlowMethod = Literal["dis", "farneback"]
DisPreset = Literal["ultrafast", "fast", "medium"]

_DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}

#: Pixels moving less than this (pixels per frame) count as background in the crowd velocity.
DEFAULT_MIN_MOTION_PX = 0.3


class DenseFlow:
    """Dense optical flow in pixels per frame at the input resolution.

    Args:
        scale: the frames are resized by this factor before the flow is computed (0 < scale <= 1).
        method: ``"dis"`` (OpenCV DIS, fast; default) or ``"farneback"``.
        preset: DIS quality preset, ``"ultrafast"`` (default), ``"fast"`` or ``"medium"``.
        finest_scale: the finest pyramid level DIS refines to (0 = the reduced frame itself;
            the presets' own choice, 1 or 2, is faster but underestimates small movers).
        patch_stride: pixels between DIS's patches at each level (None: the preset's, 4).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> texture = cv2.GaussianBlur(rng.integers(0, 255, (120, 160), np.uint8), (0, 0), 2)
        >>> moved = np.roll(texture, 3, axis=1)  # 3 px to the right
        >>> flow = DenseFlow(scale=1.0)(texture, moved)
        >>> round(float(np.median(flow[20:-20, 20:-20, 0])))
        3
    """

    def __init__(
        self,
        scale: float = 0.5,
        method: FlowMethod = "dis",
        preset: DisPreset = "ultrafast",
        finest_scale: int = 0,
        patch_stride: int | None = None,
    ) -> None:
        if not 0 < scale <= 1:
            raise ValueError(f"flow scale must be in (0, 1], got {scale}")
        if method not in ("dis", "farneback"):
            raise ValueError(f"unknown flow method {method!r}; use 'dis' or 'farneback'")
        if preset not in _DIS_PRESETS:
            raise ValueError(f"unknown DIS preset {preset!r}; use one of {sorted(_DIS_PRESETS)}")
        self.scale = float(scale)
        self.method: FlowMethod = method
        self.preset: DisPreset = preset
        self._dis = None
        if method == "dis":
            self._dis = cv2.DISOpticalFlow_create(_DIS_PRESETS[preset])
            self._dis.setFinestScale(int(finest_scale))
            if patch_stride is not None:
                self._dis.setPatchStride(int(patch_stride))

    def __call__(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
        """Flow (H, W, 2) float32 from ``previous`` to ``current`` (BGR or gray, same size)."""
        if previous.shape[:2] != current.shape[:2]:
            raise ValueError(f"frames differ in size: {previous.shape[:2]} and {current.shape[:2]}")
        height, width = previous.shape[:2]
        small_previous, small_current = self.prepare(previous), self.prepare(current)
        flow = self.flow_between_prepared(small_previous, small_current)
        return self.to_full_resolution(flow, width, height)

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """The reduced gray frame the flow is computed on (cache it to reuse for the next pair)."""
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        if gray.dtype != np.uint8:
            raise ValueError(f"frames must be uint8, got {gray.dtype}")
        if self.scale == 1.0:
            return gray
        return cv2.resize(gray, None, fx=self.scale, fy=self.scale, interpolation=cv2.INTER_AREA)

    def flow_between_prepared(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
        """Flow (h, w, 2) in pixels of the reduced frames."""
        if self._dis is not None:
            return self._dis.calc(previous, current, None)
        return cv2.calcOpticalFlowFarneback(
            previous,
            current,
            None,
            pyr_scale=0.5,
            levels=3,
            winsize=15,
            iterations=3,
            poly_n=5,
            poly_sigma=1.2,
            flags=0,
        )

    def to_full_resolution(self, flow: np.ndarray, width: int, height: int) -> np.ndarray:
        """Resize a reduced flow to (height, width) and convert it to full-size pixels."""
        if flow.shape[:2] == (height, width):
            return flow
        full = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
        full[..., 0] *= width / flow.shape[1]
        full[..., 1] *= height / flow.shape[0]
        return full


class FlowStream:
    """Keeps the previous frame and gives the flow for each new one (None for the first).

    Example:
        >>> stream = FlowStream(DenseFlow())
        >>> # for frame in frames: flow = stream.update(frame.image)
    """

    def __init__(self, flow: DenseFlow | None = None) -> None:
        self.flow = flow or DenseFlow()
        self._previous: np.ndarray | None = None

    def update(self, image: np.ndarray) -> np.ndarray | None:
        """Flow (H, W, 2) from the last frame to ``image``; None for the first frame."""
        height, width = image.shape[:2]
        current = self.flow.prepare(image)
        previous, self._previous = self._previous, current
        if previous is None or previous.shape != current.shape:
            return None
        reduced = self.flow.flow_between_prepared(previous, current)
        return self.flow.to_full_resolution(reduced, width, height)

    def update_reduced(self, image: np.ndarray) -> np.ndarray | None:
        """Like :meth:`update`, but the flow (h, w, 2) stays at the reduced size, in reduced
        pixels (what :func:`crowd_velocity_reduced` takes); None for the first frame."""
        current = self.flow.prepare(image)
        previous, self._previous = self._previous, current
        if previous is None or previous.shape != current.shape:
            return None
        return self.flow.flow_between_prepared(previous, current)

    def reset(self) -> None:
        """Forget the previous frame (after a cut or a reconnect)."""
        self._previous = None


def density_flow(
    previous_density: np.ndarray, density: np.ndarray, flow: DenseFlow | None = None
) -> np.ndarray:
    """Optical flow (H, W, 2) of the density maps themselves: how the people's mass moves.

    Image flow at a person's pixels is sometimes another person's motion: the one walking in
    front and hiding their feet. Where the estimator separates people (detectors: one blob per
    person), the motion of the blobs between two density maps is the motion of the mass, and
    the flux through a line counts crossings far better (PETS 2009: see
    ``benchmarks/pets_ground_truth.py``). In dense crowds the density is smooth and its flow is
    ill-defined: use image flow there.

    Both maps are turned into 8-bit images on one shared scale (square root, to keep faint
    far-away blobs visible) and handed to the same DIS flow as frames.
    """
    if previous_density.shape != density.shape:
        raise ValueError(
            f"density maps differ in shape: {previous_density.shape} and {density.shape}"
        )
    flow = flow or DenseFlow()
    peak = float(max(np.max(previous_density), np.max(density), 0.0))
    height, width = density.shape
    if peak <= 0:
        return np.zeros((height, width, 2), np.float32)

    def as_image(values: np.ndarray) -> np.ndarray:
        return (np.sqrt(np.clip(values, 0, None) / peak) * 255).astype(np.uint8)

    reduced = flow.flow_between_prepared(
        flow.prepare(as_image(previous_density)), flow.prepare(as_image(density))
    )
    return flow.to_full_resolution(reduced, width, height)


def moving_mass(
    previous_density: np.ndarray,
    density: np.ndarray,
    flow: np.ndarray,
    sigma_px: float = 3.0,
) -> np.ndarray:
    """The part of ``density`` that the previous map, moved by ``flow``, explains (H, W).

    Mass conservation check for :func:`density_flow`: a blob that was not there a frame ago (a
    detection that flickers on, a false positive) has no motion worth the name, and a blob that
    swells or shrinks with its box is only partly moving. Each pixel keeps
    min(warped previous, current) / max(...) of its mass, both smoothed over ``sigma_px``.
    """
    if previous_density.shape != density.shape or flow.shape[:2] != density.shape:
        raise ValueError(
            f"shapes differ: previous {previous_density.shape}, density {density.shape}, "
            f"flow {flow.shape}"
        )
    height, width = density.shape
    xs, ys = _pixel_coordinates(width, height)
    warped = cv2.remap(
        previous_density.astype(np.float32),
        xs - flow[..., 0],
        ys - flow[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    before = cv2.GaussianBlur(warped, (0, 0), sigma_px)
    now = cv2.GaussianBlur(density.astype(np.float32), (0, 0), sigma_px)
    agreement = np.minimum(before, now) / np.maximum(np.maximum(before, now), 1e-12)
    return (density * np.clip(agreement, 0.0, 1.0)).astype(np.float32)


@lru_cache(maxsize=8)
def _pixel_coordinates(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """x and y of every pixel (H, W) float32, made once per size (read-only: do not modify)."""
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    xs.flags.writeable = False
    ys.flags.writeable = False
    return xs, ys


def crowd_flow(
    flow: np.ndarray, sigma_px: float = 6.0, min_motion_px: float = DEFAULT_MIN_MOTION_PX
) -> np.ndarray:
    """The local velocity of whatever moves, spread over a neighbourhood (H, W, 2).

    Optical flow is the body's motion on the body's pixels and ~0 on the ground around it, while
    a density map spreads each person over both. Averaging the flow of moving pixels only, over a
    Gaussian of ``sigma_px``, gives each person's velocity wherever their density lies; where
    nothing moves it is 0. Pixels are weighted by their speed: at a body's edge the flow blends
    with the still background, and the body's core should count more than its rim.
    """
    return _crowd_flow(flow, sigma_px, sigma_px, min_motion_px)


def _crowd_flow(
    flow: np.ndarray, sigma_x: float, sigma_y: float, min_motion_px: float
) -> np.ndarray:
    """:func:`crowd_flow` with its own sigma per axis; ``flow`` and the threshold in the same
    pixels. The three weighted fields are blurred together, in one 3-channel pass."""
    fx, fy = cv2.split(np.ascontiguousarray(flow, dtype=np.float32))
    speed = cv2.magnitude(fx, fy)
    # Weight = speed of pixels above the noise floor, 0 elsewhere.
    moving = np.where(speed > min_motion_px, speed, np.float32(0)).astype(np.float32, copy=False)
    stacked = cv2.merge([fx * moving, fy * moving, moving])
    blurred = cv2.GaussianBlur(stacked, (0, 0), sigmaX=sigma_x, sigmaY=sigma_y)
    weight = blurred[..., 2]
    # Where almost no moving weight reaches (0.05 px/frame's worth) the average is noise.
    inverse = np.where(weight > 0.05, 1.0 / np.maximum(weight, 1e-6), 0.0).astype(np.float32)
    return np.ascontiguousarray(blurred[..., :2] * inverse[..., None], dtype=np.float32)


def ground_velocity(flow: np.ndarray, calibration: GroundCalibration, dt_s: float) -> np.ndarray:
    """Ground velocity (H, W, 2) in m/s of an image flow in pixels per ``dt_s`` seconds.

    Each pixel and its displaced position go through the homography; the difference over
    ``dt_s`` is the velocity. NaN above the horizon. Pixels of bodies (not feet) are above the
    ground, so their speed reads high by about camera height / (camera height - point height).
    """
    if not dt_s > 0:
        raise ValueError(f"dt_s must be positive, got {dt_s}")
    height, width = flow.shape[:2]
    xs, ys, start = _pixel_grid_on_ground(
        calibration.homography.tobytes(), calibration.valid_sign, width, height
    )
    end = _project(
        calibration.homography, calibration.valid_sign, xs + flow[..., 0], ys + flow[..., 1]
    )
    return ((end - start) / dt_s).astype(np.float32)


@lru_cache(maxsize=8)
def _pixel_grid_on_ground(
    homography: bytes, valid_sign: float, width: int, height: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel coordinates and their ground positions: the same every frame, so computed once."""
    matrix = np.frombuffer(homography, dtype=np.float64).reshape(3, 3)
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return xs, ys, _project(matrix, valid_sign, xs, ys)


def _project(h: np.ndarray, valid_sign: float, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    w = h[2, 0] * xs + h[2, 1] * ys + h[2, 2]
    w = np.where(valid_sign * w > 0, w, np.nan)
    gx = (h[0, 0] * xs + h[0, 1] * ys + h[0, 2]) / w
    gy = (h[1, 0] * xs + h[1, 1] * ys + h[1, 2]) / w
    return np.stack([gx, gy], axis=-1)


def crowd_velocity(
    flow: np.ndarray,
    calibration: GroundCalibration,
    dt_s: float,
    sigma_px: float = 6.0,
    min_motion_px: float = DEFAULT_MIN_MOTION_PX,
) -> np.ndarray:
    """The crowd's ground velocity (H, W, 2) in m/s: :func:`crowd_flow` through the homography.

    This is the velocity field crowd pressure and zone speeds are computed from.
    """
    return ground_velocity(crowd_flow(flow, sigma_px, min_motion_px), calibration, dt_s)


def crowd_velocity_reduced(
    flow: np.ndarray,
    calibration: GroundCalibration,
    dt_s: float,
    full_size: tuple[int, int],
    sigma_px: float = 6.0,
    min_motion_px: float = DEFAULT_MIN_MOTION_PX,
) -> np.ndarray:
    """:func:`crowd_velocity` computed on a reduced flow field, never at full resolution.

    ``flow`` (h, w, 2) is in pixels of a frame reduced from ``full_size`` = (width, height), as
    :meth:`FlowStream.update_reduced` gives it; ``calibration``, ``sigma_px`` and
    ``min_motion_px`` are in full-frame pixels as for :func:`crowd_velocity`. Returns the ground
    velocity (h, w, 2) in m/s at the reduced pixels' centres. Person scale is tens of full-frame
    pixels, so a quarter-size field loses nothing the velocity's smoothing keeps, and costs a
    sixteenth of the blurs and projections.
    """
    if not dt_s > 0:
        raise ValueError(f"dt_s must be positive, got {dt_s}")
    height, width = flow.shape[:2]
    full_width, full_height = full_size
    sx, sy = width / full_width, height / full_height
    in_full_pixels = flow * np.array([1.0 / sx, 1.0 / sy], np.float32)
    smooth = _crowd_flow(in_full_pixels, sigma_px * sx, sigma_px * sy, min_motion_px)
    xs, ys, start = _reduced_grid_on_ground(
        calibration.homography.tobytes(), calibration.valid_sign, width, height, full_size
    )
    end = _project(
        calibration.homography, calibration.valid_sign, xs + smooth[..., 0], ys + smooth[..., 1]
    )
    return ((end - start) / dt_s).astype(np.float32)


@lru_cache(maxsize=8)
def _reduced_grid_on_ground(
    homography: bytes, valid_sign: float, width: int, height: int, full_size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-frame coordinates of a reduced grid's pixel centres, and their ground positions."""
    matrix = np.frombuffer(homography, dtype=np.float64).reshape(3, 3)
    full_width, full_height = full_size
    columns = (np.arange(width, dtype=np.float32) + 0.5) * (full_width / width) - 0.5
    rows = (np.arange(height, dtype=np.float32) + 0.5) * (full_height / height) - 0.5
    xs, ys = np.meshgrid(columns, rows)
    return xs, ys, _project(matrix, valid_sign, xs, ys)
