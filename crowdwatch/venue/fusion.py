"""Every camera's people per m² placed on one venue grid, and overlapping cameras fused.

Fusion rule (people are counted once)
-------------------------------------
Each camera c that sees a venue cell gives an estimate rho_c of the *same* quantity there, the
people per m² on that patch of ground. The fused value is their visibility-weighted mean::

    rho(cell) = sum_c w_c(cell) * rho_c(cell) / sum_c w_c(cell)      (live cameras only)

    w_c(cell) = resolution_c(cell) * edge_c(cell)
    resolution_c = image pixels per m² of ground at the cell (1 / the pixel's ground area: near
                   the camera high, towards the horizon low; a farther camera weighs less)
    edge_c       = min(1, distance in pixels from the cell's image point to the image border
                   / edge_margin_px): 0 at the border, 1 from ``edge_margin_px`` inwards (a person
                   cut by the frame edge, and the model's padded border, are trusted less)

``w_c`` is 0 where camera c does not see the cell (outside its frame, above its horizon, or
coarser than ``min_px_per_m2``). A weighted *mean* of estimates of one density can never add
up two cameras' people: where two cameras see the same crowd, the fused count is between their
two counts, and equal to both when they agree. Cells no live camera sees are *uncovered*: NaN in
the fused grid, never zero, and the venue zones' covered fraction says how much of each zone
that is.

Camera grids are moved onto the venue grid by area-weighted (mass-conserving) resampling of
axis-aligned cells, so a camera whose own ground grid has other bounds or cell size loses no
people. The camera's plane is the one its estimator puts people on (the head plane for the
density model), the plane its :class:`~crowdwatch.calibration.GroundDensityMapper` maps through.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy import sparse
from shapely.geometry import Polygon, box

from crowdwatch.calibration import GroundCalibration, GroundGrid
from crowdwatch.calibration.metric_density import disk_kernel

#: Pixels from the image border over which a camera's weight rises from 0 to full.
DEFAULT_EDGE_MARGIN_PX = 64.0
#: Ground coarser than this (image pixels per m²; 16 = a 25 cm pixel) is not "seen".
DEFAULT_MIN_PX_PER_M2 = 16.0
#: Footprints are cut this far (metres, per axis) from the ground the frame's bottom sees.
DEFAULT_MAX_RANGE_M = 150.0


def venue_grid(bounds: tuple[float, float, float, float], cell_m: float) -> GroundGrid:
    """The venue grid over ``bounds`` (x_min, y_min, x_max, y_max), snapped to whole cells."""
    x_min, y_min, x_max, y_max = bounds
    x0, y0 = np.floor(x_min / cell_m) * cell_m, np.floor(y_min / cell_m) * cell_m
    x1, y1 = np.ceil(x_max / cell_m) * cell_m, np.ceil(y_max / cell_m) * cell_m
    return GroundGrid(float(x0), float(y0), float(x1), float(y1), cell_m=float(cell_m))


def cell_centres(grid: GroundGrid) -> tuple[np.ndarray, np.ndarray]:
    """Ground x and y (rows, columns) of every cell centre of ``grid``."""
    rows, columns = grid.shape
    xs = grid.x_min + (np.arange(columns) + 0.5) * grid.cell_m
    ys = grid.y_max - (np.arange(rows) + 0.5) * grid.cell_m
    return np.meshgrid(xs, ys)


def camera_footprint(
    calibration: GroundCalibration,
    width: int,
    height: int,
    *,
    max_range_m: float = DEFAULT_MAX_RANGE_M,
) -> Polygon:
    """The ground a camera's frame sees, in venue metres (empty when it sees no ground).

    The frame, cut just below its horizon, maps exactly (a homography keeps lines straight);
    ground beyond ``max_range_m`` of the point under the frame's bottom centre is cut off.
    """
    a, b, c = (calibration.valid_sign * v for v in calibration.horizon_line())
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float64)
    w_corners = corners @ np.array([a, b]) + c
    if not np.any(w_corners > 0):
        return Polygon()
    # Keep w >= delta: a hair below the horizon, where ground points are finite.
    delta = 1e-3 * float(np.abs(w_corners).max())
    seen = _clip_half_plane(corners, a, b, c - delta)
    if len(seen) < 3:
        return Polygon()
    ground = calibration.to_ground(seen)
    if not np.all(np.isfinite(ground)):
        return Polygon()
    footprint = Polygon(ground).buffer(0)
    near = calibration.to_ground([[width / 2.0, height - 1.0]])[0]
    if np.all(np.isfinite(near)):
        footprint = footprint.intersection(
            box(
                near[0] - max_range_m,
                near[1] - max_range_m,
                near[0] + max_range_m,
                near[1] + max_range_m,
            )
        )
    return footprint if isinstance(footprint, Polygon) else footprint.convex_hull


@dataclass(eq=False)
class CameraView:
    """One camera placed on the venue grid: where it sees, and how well (its fusion weight).

    Attributes:
        name: the camera's name.
        weight: (rows, columns) float32 on the venue grid, the fusion weight ``w_c`` (0 unseen).
        footprint: the ground its frame sees, venue metres.
    """

    name: str
    weight: np.ndarray
    footprint: Polygon
    _resamplers: dict = field(default_factory=dict, repr=False)

    @property
    def covers(self) -> np.ndarray:
        """Boolean (rows, columns): the venue cells this camera sees."""
        return self.weight > 0

    @classmethod
    def from_calibration(
        cls,
        name: str,
        plane: GroundCalibration,
        width: int,
        height: int,
        grid: GroundGrid,
        *,
        edge_margin_px: float = DEFAULT_EDGE_MARGIN_PX,
        min_px_per_m2: float = DEFAULT_MIN_PX_PER_M2,
        max_range_m: float = DEFAULT_MAX_RANGE_M,
    ) -> CameraView:
        """Place a camera of ``width`` x ``height`` frames on the venue ``grid``.

        ``plane`` is the calibration of the plane its estimator puts people on, in venue metres
        (``scene.people_plane``: the head plane for the density model, the ground for detectors).
        """
        gx, gy = cell_centres(grid)
        ground = np.column_stack([gx.reshape(-1), gy.reshape(-1)])
        image = plane.to_image(ground)
        u, v = image[:, 0], image[:, 1]
        inside = (
            plane.sees_ground(image)
            & np.isfinite(u)
            & np.isfinite(v)
            & (u >= -0.5)
            & (u <= width - 0.5)
            & (v >= -0.5)
            & (v <= height - 0.5)
        )
        h = plane.homography
        w = image @ h[2, :2] + h[2, 2]
        pixel_area = np.abs(np.linalg.det(h)) / np.abs(w) ** 3
        resolution = np.where(inside, 1.0 / np.maximum(pixel_area, 1e-12), 0.0)
        border = np.minimum.reduce([u + 0.5, width - 0.5 - u, v + 0.5, height - 0.5 - v])
        edge = np.clip(border / edge_margin_px, 0.0, 1.0) if edge_margin_px > 0 else 1.0
        weight = np.where(inside & (resolution >= min_px_per_m2), resolution * edge, 0.0)
        footprint = camera_footprint(plane, width, height, max_range_m=max_range_m)
        return cls(name, weight.reshape(grid.shape).astype(np.float32), footprint)

    def resample(self, source: GroundGrid, values: np.ndarray, target: GroundGrid) -> np.ndarray:
        """``values`` (people/m², on ``source``) moved onto ``target``, mass conserved."""
        if source == target:
            return np.asarray(values, np.float32)
        key = (source, target)
        if key not in self._resamplers:
            self._resamplers[key] = _resampler(source, target)
        rows, columns = self._resamplers[key]
        mass = rows @ np.nan_to_num(np.asarray(values, np.float64)) @ columns.T
        return (mass / target.cell_m**2).astype(np.float32)


@dataclass(frozen=True)
class CameraGround:
    """One camera's frame on its own ground grid: people/m² (rows, columns) on ``grid``."""

    grid: GroundGrid
    per_m2: np.ndarray


@dataclass(frozen=True)
class FusedGrid:
    """The venue's people per m² for one moment.

    Attributes:
        grid: the venue grid.
        per_m2: (rows, columns) float32 fused people/m²; NaN where no live camera sees.
        weight: (rows, columns) total fusion weight of the live cameras.
        cameras: the live cameras fused.
    """

    grid: GroundGrid
    per_m2: np.ndarray
    weight: np.ndarray
    cameras: tuple[str, ...]

    @property
    def covered(self) -> np.ndarray:
        """Boolean (rows, columns): cells some live camera sees."""
        return self.weight > 0

    @property
    def count(self) -> float:
        """People on the whole covered venue grid."""
        return float(np.nansum(self.per_m2) * self.grid.cell_m**2)

    def heat_map(self, radius_m: float = 1.0) -> np.ndarray:
        """People per m² counted over ``radius_m`` around each cell (the steward's measure of
        :mod:`crowdwatch.calibration.metric_density`), for fused *un-smoothed* grids; NaN
        uncovered."""
        kernel = disk_kernel(radius_m, self.grid.cell_m)
        mass = np.nan_to_num(self.per_m2) * self.grid.cell_m**2
        smooth = cv2.filter2D(mass.astype(np.float32), -1, kernel, borderType=cv2.BORDER_CONSTANT)
        return np.where(self.covered, smooth, np.nan).astype(np.float32)


class VenueFusion:
    """Fuses the cameras' ground grids on the venue grid, frame by frame (see module docs).

    Example:
        >>> fusion = VenueFusion(grid, [view_a, view_b])  # doctest: +SKIP
        >>> fused = fusion.fuse({"a": CameraGround(grid_a, rho_a),  # doctest: +SKIP
        ...                      "b": CameraGround(grid_b, rho_b)}, live={"a", "b"})
    """

    def __init__(self, grid: GroundGrid, views: Sequence[CameraView]) -> None:
        names = [view.name for view in views]
        if len(set(names)) != len(names):
            raise ValueError(f"camera names must be unique, got {names}")
        for view in views:
            if view.weight.shape != grid.shape:
                raise ValueError(
                    f"camera {view.name!r} was placed on a grid of shape {view.weight.shape}, "
                    f"the venue grid is {grid.shape}"
                )
        self.grid = grid
        self.views = {view.name: view for view in views}

    def fuse(
        self,
        frames: Mapping[str, CameraGround],
        live: Mapping[str, bool] | set[str] | None = None,
    ) -> FusedGrid:
        """The fused grid from the cameras' latest frames.

        A camera counts when it has a frame here and is live (``live``: the names of live
        cameras, or name -> bool; None: every camera with a frame). Others are left out, so the
        cells only they see are uncovered.
        """
        total = np.zeros(self.grid.shape, np.float64)
        weighted = np.zeros(self.grid.shape, np.float64)
        used = []
        for name, view in self.views.items():
            if name not in frames or not _is_live(name, live):
                continue
            frame = frames[name]
            values = view.resample(frame.grid, frame.per_m2, self.grid)
            total += view.weight
            weighted += view.weight * values
            used.append(name)
        with np.errstate(invalid="ignore", divide="ignore"):
            fused = np.where(total > 0, weighted / total, np.nan)
        return FusedGrid(self.grid, fused.astype(np.float32), total.astype(np.float32), tuple(used))

    def naive_sum(self, frames: Mapping[str, CameraGround]) -> np.ndarray:
        """Every camera's people/m² added up where it sees (what fusion must NOT do: the overlap
        counted once per camera). For comparison and tests."""
        out = np.zeros(self.grid.shape, np.float64)
        for name, view in self.views.items():
            if name in frames:
                frame = frames[name]
                out += np.where(
                    view.covers, view.resample(frame.grid, frame.per_m2, self.grid), 0.0
                )
        return out.astype(np.float32)


def _clip_half_plane(points: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    """The convex polygon ``points`` cut to a*x + b*y + c >= 0 (Sutherland-Hodgman)."""
    out = []
    values = points @ np.array([a, b]) + c
    for i in range(len(points)):
        p, q = points[i], points[(i + 1) % len(points)]
        vp, vq = values[i], values[(i + 1) % len(points)]
        if vp >= 0:
            out.append(p)
        if (vp >= 0) != (vq >= 0):
            out.append(p + (q - p) * (vp / (vp - vq)))
    return np.asarray(out, np.float64).reshape(-1, 2)


def _is_live(name: str, live: Mapping[str, bool] | set[str] | None) -> bool:
    if live is None:
        return True
    if isinstance(live, Mapping):
        return bool(live.get(name, False))
    return name in live


def _overlaps(src_start: float, src_cell: float, n_src: int,
              dst_start: float, dst_cell: float, n_dst: int) -> sparse.csr_matrix:  # fmt: skip
    """(n_dst, n_src) lengths of overlap of destination and source intervals along one axis."""
    src_edges = src_start + np.arange(n_src + 1) * src_cell
    dst_edges = dst_start + np.arange(n_dst + 1) * dst_cell
    rows, cols, vals = [], [], []
    for j in range(n_dst):
        lo, hi = dst_edges[j], dst_edges[j + 1]
        first = max(int(np.searchsorted(src_edges, lo, side="right")) - 1, 0)
        last = min(int(np.searchsorted(src_edges, hi, side="left")), n_src)
        for k in range(first, last):
            length = min(hi, src_edges[k + 1]) - max(lo, src_edges[k])
            if length > 1e-12:
                rows.append(j)
                cols.append(k)
                vals.append(length)
    return sparse.csr_matrix((vals, (rows, cols)), shape=(n_dst, n_src))


def _resampler(source: GroundGrid, target: GroundGrid) -> tuple[sparse.csr_matrix, ...]:
    """Row and column overlap matrices: target mass = R @ (source per m²) @ C.T (m² weights)."""
    src_rows, src_cols = source.shape
    dst_rows, dst_cols = target.shape
    columns = _overlaps(source.x_min, source.cell_m, src_cols,
                        target.x_min, target.cell_m, dst_cols)  # fmt: skip
    # Rows run from y_max downwards: measure them as distance below y_max of the target.
    rows = _overlaps(target.y_max - source.y_max, source.cell_m, src_rows,
                     0.0, target.cell_m, dst_rows)  # fmt: skip
    return rows, columns
