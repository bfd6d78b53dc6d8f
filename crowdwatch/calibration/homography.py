"""Ground-plane calibration of one camera: a homography from image pixels to metres on the ground.

Four or more image points with their ground coordinates (or the four corners of a rectangle of
known size) fix the homography. Everything metric in crowdwatch goes through it: zone areas in m²,
people per m², ground speeds in m/s, counting-line widths in metres.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np
from scipy.spatial import cKDTree

from crowdwatch.errors import CrowdwatchError

ArrayLike = np.ndarray | Sequence[Sequence[float]]

#: Points closer than this (pixels or metres) count as the same point.
_DUPLICATE_TOLERANCE = 1e-6
#: A triangle with less area than this share of its longest side squared is "collinear".
_COLLINEAR_TOLERANCE = 1e-3


class CalibrationError(CrowdwatchError, ValueError):
    """A calibration cannot be made from the given points; the message names the problem."""


@dataclass(frozen=True, eq=False)
class GroundCalibration:
    """A camera's image -> ground homography (metres), with the fit's error.

    Attributes:
        homography: 3x3 float64 matrix mapping homogeneous pixels (x, y, 1) to ground metres.
        rms_error_m: root-mean-square distance, in metres, between the calibration's ground points
            and the projections of their image points (0 for an exact four-point fit).
        max_error_m: the largest such distance.
        point_errors_m: the distance for each calibration point, in input order.
        valid_sign: the sign of the homography's third row at the calibration points. Pixels where
            it has the other sign lie above the horizon (they see no ground).

    Example:
        >>> cal = GroundCalibration.from_rectangle(
        ...     [(100, 400), (500, 400), (420, 200), (180, 200)], width_m=4.0, depth_m=6.0)
        >>> round(cal.polygon_area_m2([(100, 400), (500, 400), (420, 200), (180, 200)]), 6)
        24.0
    """

    homography: np.ndarray
    rms_error_m: float = 0.0
    max_error_m: float = 0.0
    point_errors_m: tuple[float, ...] = ()
    valid_sign: float = 1.0

    # ----- construction -------------------------------------------------------------------------

    @classmethod
    def from_points(
        cls,
        image_points: ArrayLike,
        ground_points: ArrayLike,
        max_error_m: float = 0.5,
    ) -> GroundCalibration:
        """Fit the homography to four or more image points and their ground points in metres.

        With more than four points the fit is least squares (no RANSAC: every point is meant to be
        right, so a bad one should show as error, not be silently dropped).

        Raises:
            CalibrationError: fewer than four points, mismatched counts, non-finite values,
                duplicated points, collinear points, a fit that folds the ground over the horizon,
                or a largest reprojection error above ``max_error_m``.
        """
        image = _as_points(image_points, "image points")
        ground = _as_points(ground_points, "ground points")
        if len(image) != len(ground):
            raise CalibrationError(
                f"calibration needs one ground point per image point; got {len(image)} image "
                f"points and {len(ground)} ground points"
            )
        if len(image) < 4:
            raise CalibrationError(f"calibration needs at least 4 point pairs, got {len(image)}")
        _check_distinct(image, "image points", "px")
        _check_distinct(ground, "ground points", "m")
        _check_general_position(image, "image points")
        _check_general_position(ground, "ground points")

        homography, _ = cv2.findHomography(image, ground, method=0)
        if homography is None or not np.all(np.isfinite(homography)):
            raise CalibrationError("the points do not determine a homography (degenerate layout)")
        homography = homography / np.linalg.norm(homography)
        # w = third row . (x, y, 1) is linear in the pixel, so one sign at every calibration point
        # means one sign over their hull: no horizon crosses the area, the map neither folds nor
        # flips inside it (its Jacobian determinant, det(H) / w^3, keeps its sign).
        signs = np.sign(_third_row(homography, image))
        if np.any(signs == 0) or np.any(signs != signs[0]):
            raise CalibrationError(
                "the fitted homography folds the ground: some calibration points fall beyond its "
                "horizon. Check that the ground points are listed in the same order as the image "
                "points"
            )
        errors = np.linalg.norm(_apply(homography, image) - ground, axis=1)
        calibration = cls(
            homography=homography,
            rms_error_m=float(np.sqrt(np.mean(errors**2))),
            max_error_m=float(errors.max()),
            point_errors_m=tuple(float(e) for e in errors),
            valid_sign=float(signs[0]),
        )
        if calibration.max_error_m > max_error_m:
            worst = int(np.argmax(errors))
            raise CalibrationError(
                f"the calibration points are inconsistent: point {worst} is {errors[worst]:.2f} m "
                f"from where the fitted homography puts it (limit {max_error_m} m, RMS "
                f"{calibration.rms_error_m:.2f} m). Check that point's image and ground coordinates"
            )
        return calibration

    @classmethod
    def from_rectangle(
        cls, corners_px: ArrayLike, width_m: float, depth_m: float
    ) -> GroundCalibration:
        """Calibrate from the four image corners of a ground rectangle of known size.

        ``corners_px`` go round the rectangle: the first becomes ground (0, 0), the second
        (width_m, 0), the third (width_m, depth_m), the fourth (0, depth_m).
        """
        if not (np.isfinite(width_m) and np.isfinite(depth_m)) or width_m <= 0 or depth_m <= 0:
            raise CalibrationError(
                f"rectangle sides must be positive metres, got width {width_m} and depth {depth_m}"
            )
        corners = _as_points(corners_px, "rectangle corners")
        if len(corners) != 4:
            raise CalibrationError(f"a rectangle needs exactly 4 corners, got {len(corners)}")
        ground = [(0.0, 0.0), (width_m, 0.0), (width_m, depth_m), (0.0, depth_m)]
        return cls.from_points(corners, ground)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GroundCalibration:
        """Rebuild a calibration saved with :meth:`to_dict`."""
        matrix = np.asarray(data["homography"], dtype=np.float64)
        if matrix.shape != (3, 3) or not np.all(np.isfinite(matrix)):
            raise CalibrationError("a saved homography must be a finite 3x3 matrix")
        if abs(np.linalg.det(matrix)) < 1e-18:
            raise CalibrationError("a saved homography is singular")
        return cls(
            homography=matrix,
            rms_error_m=float(data.get("rms_error_m", 0.0)),
            max_error_m=float(data.get("max_error_m", 0.0)),
            point_errors_m=tuple(float(e) for e in data.get("point_errors_m", ())),
            valid_sign=float(data.get("valid_sign", 1.0)),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-friendly form of the calibration."""
        return {
            "homography": self.homography.tolist(),
            "rms_error_m": self.rms_error_m,
            "max_error_m": self.max_error_m,
            "point_errors_m": list(self.point_errors_m),
            "valid_sign": self.valid_sign,
        }

    def resampled(self, to_original: np.ndarray) -> GroundCalibration:
        """The same calibration for another image of the same view, whose pixel p (homogeneous)
        shows the original image's pixel ``to_original @ p`` (3 x 3: a crop, a resize, a
        stretch to square pixels, or several of them composed)."""
        return replace(self, homography=self.homography @ np.asarray(to_original, np.float64))

    def scaled(self, factor: float) -> GroundCalibration:
        """The same calibration for the image resized by ``factor`` (0.5 = half size)."""
        if factor <= 0:
            raise CalibrationError(f"an image scale factor must be positive, got {factor}")
        return self.resampled(np.diag([1.0 / factor, 1.0 / factor, 1.0]))

    def cropped(self, x0: float, y0: float) -> GroundCalibration:
        """The same calibration for the sub-image whose top-left pixel is (x0, y0)."""
        return self.resampled(np.array([[1.0, 0.0, x0], [0.0, 1.0, y0], [0.0, 0.0, 1.0]]))

    # ----- mapping ------------------------------------------------------------------------------

    def to_ground(self, points_px: ArrayLike) -> np.ndarray:
        """Ground positions (N, 2) in metres of image points (N, 2); NaN above the horizon."""
        points = np.asarray(points_px, dtype=np.float64).reshape(-1, 2)
        ground = _apply(self.homography, points)
        beyond = self.valid_sign * _third_row(self.homography, points) <= 0
        ground[beyond] = np.nan
        return ground

    def to_image(self, points_m: ArrayLike) -> np.ndarray:
        """Image positions (N, 2) in pixels of ground points (N, 2) in metres."""
        points = np.asarray(points_m, dtype=np.float64).reshape(-1, 2)
        return _apply(np.linalg.inv(self.homography), points)

    def sees_ground(self, points_px: ArrayLike) -> np.ndarray:
        """Boolean (N,): which image points lie below the horizon (on the ground plane)."""
        points = np.asarray(points_px, dtype=np.float64).reshape(-1, 2)
        return self.valid_sign * _third_row(self.homography, points) > 0

    def horizon_line(self) -> tuple[float, float, float]:
        """The horizon as (a, b, c) with a*x + b*y + c = 0 in pixels."""
        a, b, c = self.homography[2]
        return float(a), float(b), float(c)

    def polygon_area_m2(self, polygon_px: ArrayLike) -> float:
        """Ground area in m² of an image polygon (exact: a homography keeps lines straight).

        Raises:
            CalibrationError: the polygon has fewer than 3 vertices or reaches above the horizon.
        """
        polygon = np.asarray(polygon_px, dtype=np.float64).reshape(-1, 2)
        if len(polygon) < 3:
            raise CalibrationError(f"a polygon needs at least 3 vertices, got {len(polygon)}")
        if not np.all(self.sees_ground(polygon)):
            raise CalibrationError(
                "the polygon reaches above the horizon, where the image shows no ground; "
                "draw the zone on the walkable ground"
            )
        return shoelace_area(self.to_ground(polygon))

    def segment_length_m(self, start_px: ArrayLike, end_px: ArrayLike) -> float:
        """Ground length in metres of the image segment from ``start_px`` to ``end_px``."""
        ends = self.to_ground(np.array([start_px, end_px], dtype=np.float64))
        if not np.all(np.isfinite(ends)):
            raise CalibrationError("the segment reaches above the horizon")
        return float(np.linalg.norm(ends[1] - ends[0]))

    def ground_maps(self, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        """Ground x and y (H, W) float32 metres of every pixel centre; NaN above the horizon."""
        xs, ys = np.meshgrid(
            np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64)
        )
        h = self.homography
        w = h[2, 0] * xs + h[2, 1] * ys + h[2, 2]
        beyond = self.valid_sign * w <= 0
        w = np.where(beyond, np.nan, w)
        gx = (h[0, 0] * xs + h[0, 1] * ys + h[0, 2]) / w
        gy = (h[1, 0] * xs + h[1, 1] * ys + h[1, 2]) / w
        return gx.astype(np.float32), gy.astype(np.float32)

    def pixel_area_map(self, width: int, height: int) -> np.ndarray:
        """Ground area in m² that each pixel covers, float32 (H, W); NaN above the horizon.

        It is the homography's Jacobian determinant, det(H) / w³, so it is exact per pixel and
        grows without bound towards the horizon (pixels there see huge stretches of ground).
        """
        if width <= 0 or height <= 0:
            raise CalibrationError(f"image size must be positive, got {width}x{height}")
        xs, ys = np.meshgrid(
            np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64)
        )
        h = self.homography
        w = h[2, 0] * xs + h[2, 1] * ys + h[2, 2]
        area = np.abs(np.linalg.det(h)) / np.abs(w) ** 3
        area[self.valid_sign * w <= 0] = np.nan
        return area.astype(np.float32)

    def birds_eye(
        self,
        image: np.ndarray,
        metres_per_pixel: float,
        bounds: tuple[float, float, float, float],
        interpolation: int = cv2.INTER_LINEAR,
    ) -> np.ndarray:
        """Warp an image-shaped field to a top-down view of the ground.

        ``bounds`` is (x_min, y_min, x_max, y_max) in ground metres; the output has
        ceil((x_max - x_min) / metres_per_pixel) columns, and row 0 at y_max (ground y points
        up, as on a map). Warp intensive quantities (colours, people per m²): a count-per-pixel
        density would not keep its sum. Ground not seen by the camera comes out 0.
        """
        output_to_image = self.birds_eye_matrix(metres_per_pixel, bounds)
        columns, rows = birds_eye_size(metres_per_pixel, bounds)
        source = np.nan_to_num(image) if np.issubdtype(image.dtype, np.floating) else image
        return cv2.warpPerspective(
            source,
            output_to_image,
            (columns, rows),
            flags=interpolation | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )

    def birds_eye_matrix(
        self, metres_per_pixel: float, bounds: tuple[float, float, float, float]
    ) -> np.ndarray:
        """3x3 matrix from bird's-eye output pixels to image pixels (see :meth:`birds_eye`)."""
        x_min, _, _, y_max = _check_bounds(metres_per_pixel, bounds)
        output_to_ground = np.array(
            [
                [metres_per_pixel, 0.0, x_min],
                [0.0, -metres_per_pixel, y_max],
                [0.0, 0.0, 1.0],
            ]
        )
        return np.linalg.inv(self.homography) @ output_to_ground


def birds_eye_size(
    metres_per_pixel: float, bounds: tuple[float, float, float, float]
) -> tuple[int, int]:
    """(columns, rows) of a bird's-eye view of ``bounds`` at ``metres_per_pixel``."""
    x_min, y_min, x_max, y_max = _check_bounds(metres_per_pixel, bounds)
    columns = int(np.ceil((x_max - x_min) / metres_per_pixel - 1e-9))
    rows = int(np.ceil((y_max - y_min) / metres_per_pixel - 1e-9))
    return columns, rows


def shoelace_area(polygon: np.ndarray) -> float:
    """Area of a simple polygon (N, 2) in its own units squared."""
    x, y = polygon[:, 0], polygon[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


# ----- helpers --------------------------------------------------------------------------------


def _apply(homography: np.ndarray, points: np.ndarray) -> np.ndarray:
    homogeneous = np.column_stack([points, np.ones(len(points))]) @ homography.T
    return homogeneous[:, :2] / homogeneous[:, 2:3]


def _third_row(homography: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ homography[2, :2] + homography[2, 2]


def _as_points(values: ArrayLike, what: str) -> np.ndarray:
    try:
        points = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CalibrationError(f"{what} must be numbers: {exc}") from exc
    if points.ndim != 2 or points.shape[1] != 2:
        raise CalibrationError(f"{what} must be a list of (x, y) pairs, got shape {points.shape}")
    if not np.all(np.isfinite(points)):
        raise CalibrationError(f"{what} contain NaN or infinite values")
    return points


def _check_distinct(points: np.ndarray, what: str, unit: str) -> None:
    pairs = cKDTree(points).query_pairs(_DUPLICATE_TOLERANCE, output_type="ndarray")
    if len(pairs):
        i, j = sorted(int(k) for k in pairs[0])
        raise CalibrationError(
            f"{what} {i} and {j} are the same point ({points[i][0]:g}, {points[i][1]:g}) "
            f"{unit}; every calibration point must be distinct"
        )


def _is_collinear(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> bool:
    twice_area = abs((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))
    longest = max(np.linalg.norm(b - a), np.linalg.norm(c - a), np.linalg.norm(c - b))
    return twice_area <= _COLLINEAR_TOLERANCE * longest**2


def _check_general_position(points: np.ndarray, what: str) -> None:
    """At least four points, no three of them on one line, must exist among the points."""
    centred = points - points.mean(axis=0)
    singular = np.linalg.svd(centred, compute_uv=False)
    if singular[1] <= _COLLINEAR_TOLERANCE * singular[0]:
        raise CalibrationError(
            f"all {what} lie on one line; a ground plane needs points spread in two directions"
        )
    # Among many points, a well-spread dozen holds a non-degenerate four if any do.
    candidates = points if len(points) <= 12 else points[_spread_indices(points, 12)]
    for quad in itertools.combinations(range(len(candidates)), 4):
        if not any(
            _is_collinear(candidates[a], candidates[b], candidates[c])
            for a, b, c in itertools.combinations(quad, 3)
        ):
            return
    raise CalibrationError(
        f"{what}: no four points with three of them off a common line; "
        "three or more collinear points leave the homography undetermined"
    )


def _spread_indices(points: np.ndarray, count: int) -> np.ndarray:
    """Farthest-point sampling: ``count`` indices of points spread over the set."""
    chosen = [0]
    distance = np.linalg.norm(points - points[0], axis=1)
    while len(chosen) < count:
        chosen.append(int(np.argmax(distance)))
        distance = np.minimum(distance, np.linalg.norm(points - points[chosen[-1]], axis=1))
    return np.array(chosen)


def _check_bounds(
    metres_per_pixel: float, bounds: tuple[float, float, float, float]
) -> tuple[float, float, float, float]:
    if not metres_per_pixel > 0:
        raise CalibrationError(f"metres_per_pixel must be positive, got {metres_per_pixel}")
    x_min, y_min, x_max, y_max = (float(v) for v in bounds)
    if not (x_max > x_min and y_max > y_min):
        raise CalibrationError(f"bounds must be (x_min, y_min, x_max, y_max), got {bounds}")
    return x_min, y_min, x_max, y_max
