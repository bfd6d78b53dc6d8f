"""People per square metre from a density map and a ground calibration.

Dividing a density map by each pixel's ground area gives absurd peaks: one person's Gaussian
over a far pixel that covers a few cm² reads as hundreds of people per m². crowdwatch defines
people per m² the way a steward would count it, over a window on the ground:

    rho(p) = (people within ``radius_m`` of p on the ground) / (pi * radius_m²)

Each pixel's mass is placed at its ground position on a fine grid, the grid is summed over a
disk of ``radius_m`` and divided by the disk's area, and every pixel reads the value at its own
ground position. One person alone reads 1 / (pi r²) (0.32 /m² for r = 1 m) wherever they stand,
near or far from the camera. The grid itself is the bird's-eye view of people per m².
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from crowdwatch.calibration.homography import CalibrationError, GroundCalibration
from crowdwatch.heatmap.density import reduce_mass

#: Default radius of the ground window that people per m² are counted over.
DEFAULT_RADIUS_M = 1.0
#: Default side of a ground grid cell.
DEFAULT_CELL_M = 0.2
#: The largest ground extent (per axis) mapped by default; farther pixels read NaN.
DEFAULT_MAX_EXTENT_M = 200.0


@dataclass(frozen=True)
class GroundGrid:
    """A top-down grid over the ground: row 0 at ``y_max`` (ground y points up, as on a map)."""

    x_min: float
    y_min: float
    x_max: float
    y_max: float
    cell_m: float

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns)."""
        columns = int(np.ceil((self.x_max - self.x_min) / self.cell_m - 1e-9))
        rows = int(np.ceil((self.y_max - self.y_min) / self.cell_m - 1e-9))
        return rows, columns

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(x_min, y_min, x_max, y_max) in metres, as :meth:`GroundCalibration.birds_eye` takes."""
        return self.x_min, self.y_min, self.x_max, self.y_max

    def contains(self, column: np.ndarray, row: np.ndarray) -> np.ndarray:
        """Whether fractional (column, row) coordinates from :meth:`cell_of` fall in a cell of
        the grid (NaN: no)."""
        rows, columns = self.shape
        return (
            np.isfinite(column)
            & (column >= -0.5)
            & (column < columns - 0.5)
            & (row >= -0.5)
            & (row < rows - 0.5)
        )

    def cell_of(self, x_m: np.ndarray, y_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fractional (column, row) coordinates of ground points, cell centres at integers."""
        return (x_m - self.x_min) / self.cell_m - 0.5, (self.y_max - y_m) / self.cell_m - 0.5


class GroundDensityMapper:
    """Turns density maps of one camera into people per m², in the image and top-down.

    Build it once per camera and image size (it precomputes every pixel's ground position),
    then call :meth:`per_m2` or :meth:`ground_grid` on each frame's density map.

    Example:
        >>> import numpy as np
        >>> cal = GroundCalibration.from_rectangle(
        ...     [(0, 99), (99, 99), (99, 0), (0, 0)], width_m=10.0, depth_m=10.0)
        >>> mapper = GroundDensityMapper(cal, (100, 100), radius_m=1.0)
        >>> density = np.zeros((100, 100), np.float32); density[50, 50] = 1.0
        >>> round(float(mapper.per_m2(density)[50, 50]), 2)  # one person: 1 / (pi * 1 m²)
        0.32
    """

    def __init__(
        self,
        calibration: GroundCalibration,
        image_size: tuple[int, int],
        radius_m: float = DEFAULT_RADIUS_M,
        cell_m: float = DEFAULT_CELL_M,
        bounds: tuple[float, float, float, float] | None = None,
        max_extent_m: float = DEFAULT_MAX_EXTENT_M,
    ) -> None:
        width, height = image_size
        if width <= 0 or height <= 0:
            raise CalibrationError(f"image size must be positive, got {width}x{height}")
        if not radius_m > 0 or not cell_m > 0:
            raise CalibrationError(
                f"radius_m and cell_m must be positive, got {radius_m} and {cell_m}"
            )
        if radius_m < cell_m:
            raise CalibrationError(f"radius_m ({radius_m}) must be at least cell_m ({cell_m})")
        self.calibration = calibration
        self.image_size = (int(width), int(height))
        self.radius_m = float(radius_m)
        ground_x, ground_y = calibration.ground_maps(width, height)
        self.grid = GroundGrid(
            *(bounds or _footprint_bounds(ground_x, ground_y, max_extent_m)), cell_m=cell_m
        )
        rows, columns = self.grid.shape
        if rows * columns > 25_000_000:
            raise CalibrationError(
                f"ground grid of {columns}x{rows} cells is too large; raise cell_m or narrow bounds"
            )
        self._map_x, self._map_y = (
            m.astype(np.float32) for m in self.grid.cell_of(ground_x, ground_y)
        )
        inside = self.grid.contains(self._map_x, self._map_y)
        self.mapped = inside
        self._kernel = disk_kernel(radius_m, cell_m)
        # What grid_to_image reads every frame, made once: finite sampling maps and the pixels
        # that see no grid.
        self._remap_x = np.nan_to_num(self._map_x, nan=-1.0)
        self._remap_y = np.nan_to_num(self._map_y, nan=-1.0)
        self._unmapped = np.flatnonzero(~inside)
        self._reduced: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._to_cells = self._blocks_to_cells(calibration)

    def _blocks_to_cells(self, calibration: GroundCalibration):
        """The fixed blocks -> cells sum that moves a density map's mass to the ground: each
        ``MASS_BLOCK`` x ``MASS_BLOCK`` block of pixels to the cell under its centre, one sparse
        product a frame. A density map is smooth at the estimator's stride (8 px), so summing
        2 x 2 blocks first moves nothing by more than a pixel, at a quarter of the work."""
        from scipy.sparse import csr_matrix

        width, height = self.image_size
        rows, columns = self.grid.shape
        block_width, block_height = _block_size(width, height)
        # Block (u, v)'s centre is full-frame pixel (u * sx + (sx - 1) / 2, v * sy + ...).
        sx, sy = width / block_width, height / block_height
        to_full = np.array([[sx, 0.0, (sx - 1) / 2], [0.0, sy, (sy - 1) / 2], [0.0, 0.0, 1.0]])
        centres = calibration.resampled(to_full)
        cell_x, cell_y = self.grid.cell_of(*centres.ground_maps(block_width, block_height))
        inside = self.grid.contains(cell_x, cell_y)
        blocks = np.flatnonzero(inside)
        cells = np.rint(cell_y.reshape(-1)[blocks]).astype(np.int64) * columns + np.rint(
            cell_x.reshape(-1)[blocks]
        ).astype(np.int64)
        return csr_matrix(
            (np.ones(len(blocks), np.float32), (cells, blocks)),
            shape=(rows * columns, inside.size),
        )

    def ground_counts(self, density: np.ndarray) -> np.ndarray:
        """People per grid cell (rows, columns) float32: the map's mass moved to the ground."""
        self._check_shape(density)
        rows, columns = self.grid.shape
        counts = self._to_cells @ _block_sums(density).reshape(-1)
        return counts.reshape(rows, columns).astype(np.float32, copy=False)

    def ground_grid(self, density: np.ndarray) -> np.ndarray:
        """People per m² on the ground grid (rows, columns): the bird's-eye view."""
        counts = self.ground_counts(density)
        # Only cells within the disk's reach of an occupied cell can be non-zero: convolve the
        # occupied box grown by the kernel's radius (on PETS a few per cent of the grid), which
        # gives the whole-grid convolution's values, as zeros outside cannot contribute.
        rows, columns = np.flatnonzero(counts.any(axis=1)), np.flatnonzero(counts.any(axis=0))
        if rows.size == 0:
            return np.zeros_like(counts)
        reach = self._kernel.shape[0] // 2
        top, left = max(0, rows[0] - reach), max(0, columns[0] - reach)
        bottom = min(counts.shape[0], rows[-1] + reach + 1)
        right = min(counts.shape[1], columns[-1] + reach + 1)
        grid = np.zeros_like(counts)
        grid[top:bottom, left:right] = cv2.filter2D(
            counts[top:bottom, left:right], -1, self._kernel, borderType=cv2.BORDER_CONSTANT
        )
        return grid

    def per_m2(self, density: np.ndarray) -> np.ndarray:
        """People per m² (H, W) float32 at each pixel's ground position; NaN off the grid."""
        return self.grid_to_image(self.ground_grid(density))

    def grid_to_image(self, grid: np.ndarray) -> np.ndarray:
        """A :meth:`ground_grid` read back at each pixel's ground position (H, W); NaN off it."""
        return _read_grid(grid, self._remap_x, self._remap_y, unmapped=self._unmapped, fill=np.nan)

    def grid_at(self, grid: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """A :meth:`ground_grid` read back on a reduced image of ``shape`` (h, w): each reduced
        pixel reads the grid where the full-frame pixel nearest its centre sees the ground, 0
        where that pixel sees no grid (as crowd pressure reads it). It costs (h x w) / (H x W)
        of :meth:`grid_to_image` and no full-frame map."""
        map_x, map_y, unmapped = self._reduced_maps(*shape)
        return _read_grid(grid, map_x, map_y, unmapped=unmapped, fill=0.0)

    def _reduced_maps(self, height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Grid coordinates of a reduced image's pixels and its unmapped pixels, once per size."""
        key = (int(height), int(width))
        if key not in self._reduced:
            full_width, full_height = self.image_size
            columns = np.minimum(
                ((np.arange(width) + 0.5) * (full_width / width)).astype(int), full_width - 1
            )
            rows = np.minimum(
                ((np.arange(height) + 0.5) * (full_height / height)).astype(int), full_height - 1
            )
            pick = np.ix_(rows, columns)
            self._reduced[key] = (
                np.ascontiguousarray(self._remap_x[pick]),
                np.ascontiguousarray(self._remap_y[pick]),
                np.flatnonzero(~self.mapped[pick]),
            )
        return self._reduced[key]

    def _check_shape(self, density: np.ndarray) -> None:
        width, height = self.image_size
        if density.shape != (height, width):
            raise ValueError(
                f"density map has shape {density.shape}, the mapper was built for "
                f"{height}x{width} (height x width)"
            )


def _read_grid(
    grid: np.ndarray,
    map_x: np.ndarray,
    map_y: np.ndarray,
    *,
    unmapped: np.ndarray,
    fill: float,
) -> np.ndarray:
    """The grid sampled bilinearly at fractional cell coordinates, ``fill`` at the flat indices
    of the pixels that see no grid."""
    values = cv2.remap(
        grid, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    values.reshape(-1)[unmapped] = fill
    return values


#: Pixels are summed in blocks of this side before their mass is moved to the ground.
MASS_BLOCK = 2


def _block_size(width: int, height: int) -> tuple[int, int]:
    """(columns, rows) of ``MASS_BLOCK`` blocks covering a width x height map."""
    return max(1, width // MASS_BLOCK), max(1, height // MASS_BLOCK)


def _block_sums(density: np.ndarray) -> np.ndarray:
    """The map's mass per block (the sum is kept)."""
    block_width, block_height = _block_size(density.shape[1], density.shape[0])
    return reduce_mass(density, width=block_width, height=block_height)


def density_per_m2(
    density: np.ndarray, calibration: GroundCalibration, radius_m: float = DEFAULT_RADIUS_M
) -> np.ndarray:
    """People per m² (H, W) of a density map, counted over ``radius_m`` on the ground.

    A one-off convenience; for video build one :class:`GroundDensityMapper` and reuse it.
    """
    height, width = density.shape
    return GroundDensityMapper(calibration, (width, height), radius_m=radius_m).per_m2(density)


def zone_density(count: float, area_m2: float) -> float:
    """Mean people per m² of a zone: its count over its walkable area."""
    if not area_m2 > 0:
        raise ValueError(f"a zone's area must be positive, got {area_m2} m²")
    return float(count) / float(area_m2)


def _footprint_bounds(
    ground_x: np.ndarray, ground_y: np.ndarray, max_extent_m: float
) -> tuple[float, float, float, float]:
    """Ground bounds of the pixels that see the ground, at most ``max_extent_m`` per axis."""
    finite = np.isfinite(ground_x) & np.isfinite(ground_y)
    if not finite.any():
        raise CalibrationError("no pixel of the image sees the ground plane")
    xs, ys = ground_x[finite], ground_y[finite]
    # Near the horizon one pixel spans kilometres: centre the window on the bulk of the image.
    centre_x, centre_y = float(np.median(xs)), float(np.median(ys))
    half = max_extent_m / 2.0
    x_min = max(float(xs.min()), centre_x - half)
    x_max = min(float(xs.max()), centre_x + half)
    y_min = max(float(ys.min()), centre_y - half)
    y_max = min(float(ys.max()), centre_y + half)
    return x_min, y_min, max(x_max, x_min + 1.0), max(y_max, y_min + 1.0)


def disk_kernel(radius_m: float, cell_m: float, supersample: int = 8) -> np.ndarray:
    """A disk of ``radius_m`` weighted by each cell's covered share, divided by its area in m².

    Convolving people per cell with it gives people within ``radius_m`` per m²; partial cells at
    the rim keep the disk's area at pi r² whatever the cell size.
    """
    reach = int(np.ceil(radius_m / cell_m))
    # Sub-cell sample positions, in cells, across the whole kernel.
    steps = (np.arange((2 * reach + 1) * supersample) + 0.5) / supersample - reach - 0.5
    inside = (steps[None, :] ** 2 + steps[:, None] ** 2) <= (radius_m / cell_m) ** 2
    side = 2 * reach + 1
    coverage = inside.reshape(side, supersample, side, supersample).mean(axis=(1, 3))
    return (coverage / (coverage.sum() * cell_m**2)).astype(np.float32)
