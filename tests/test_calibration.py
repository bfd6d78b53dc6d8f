"""Ground calibration and people per m² against synthetic cameras with known geometry."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from crowdwatch.calibration import (
    CalibrationError,
    GroundCalibration,
    GroundDensityMapper,
    density_per_m2,
    zone_density,
)

WIDTH, HEIGHT = 768, 576


def pinhole_ground_to_image(
    height_m: float = 8.0, tilt_deg: float = 35.0, focal_px: float = 700.0
) -> np.ndarray:
    """3x3 homography ground (x, y metres) -> image pixels of a real-looking CCTV camera.

    The camera stands at (0, -10) metres, ``height_m`` up, looking along +y, tilted down.
    """
    tilt = np.radians(tilt_deg)
    # Camera axes in world coordinates: x right, y down (in image), z forward.
    forward = np.array([0.0, np.cos(tilt), -np.sin(tilt)])
    right = np.array([1.0, 0.0, 0.0])
    down = np.cross(forward, right)
    rotation = np.vstack([right, down, forward])
    centre = np.array([0.0, -10.0, height_m])
    translation = -rotation @ centre
    intrinsics = np.array([[focal_px, 0, WIDTH / 2], [0, focal_px, HEIGHT / 2], [0, 0, 1]])
    return intrinsics @ np.column_stack([rotation[:, 0], rotation[:, 1], translation])


def project(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    homogeneous = np.column_stack([points, np.ones(len(points))]) @ matrix.T
    return homogeneous[:, :2] / homogeneous[:, 2:3]


@pytest.fixture(scope="module")
def camera() -> tuple[np.ndarray, GroundCalibration]:
    """A pinhole camera and its calibration from six ground marks."""
    ground_to_image = pinhole_ground_to_image()
    marks = np.array([[-4, 0], [4, 0], [5, 10], [-5, 10], [0, 5], [2, 15]], dtype=np.float64)
    calibration = GroundCalibration.from_points(project(ground_to_image, marks), marks)
    return ground_to_image, calibration


def test_exact_points_fit_with_zero_error(camera):
    _, calibration = camera
    assert calibration.rms_error_m < 1e-6
    assert calibration.max_error_m < 1e-6
    assert len(calibration.point_errors_m) == 6


def test_zone_area_matches_known_ground_rectangle(camera):
    ground_to_image, calibration = camera
    # A 6 m x 4 m zone and a 3-4-5 right triangle (6 m²) drawn on the ground.
    rectangle = np.array([[-3, 2], [3, 2], [3, 6], [-3, 6]], dtype=np.float64)
    triangle = np.array([[0, 8], [3, 8], [0, 12]], dtype=np.float64)
    assert calibration.polygon_area_m2(project(ground_to_image, rectangle)) == pytest.approx(24.0)
    assert calibration.polygon_area_m2(project(ground_to_image, triangle)) == pytest.approx(6.0)


def test_far_zone_of_same_size_has_same_area_but_fewer_pixels(camera):
    ground_to_image, calibration = camera
    near = project(ground_to_image, np.array([[-1, 1], [1, 1], [1, 3], [-1, 3]], float))
    far = project(ground_to_image, np.array([[-1, 15], [1, 15], [1, 17], [-1, 17]], float))
    assert calibration.polygon_area_m2(near) == pytest.approx(4.0)
    assert calibration.polygon_area_m2(far) == pytest.approx(4.0)
    assert cv2.contourArea(far.astype(np.float32)) < cv2.contourArea(near.astype(np.float32)) / 4


def test_pixel_area_map_sums_to_zone_area(camera):
    ground_to_image, calibration = camera
    zone = project(ground_to_image, np.array([[-4, 3], [4, 3], [4, 12], [-4, 12]], float))
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    cv2.fillPoly(mask, [np.round(zone).astype(np.int32)], 1)
    areas = calibration.pixel_area_map(WIDTH, HEIGHT)
    assert areas[mask > 0].sum() == pytest.approx(72.0, rel=0.02)
    # Farther rows (higher up the image) cover more ground per pixel.
    assert areas[100, WIDTH // 2] > areas[500, WIDTH // 2] > 0


def test_pixels_above_horizon_see_no_ground():
    ground_to_image = pinhole_ground_to_image(tilt_deg=10.0)  # horizon inside the frame
    marks = np.array([[-3, 0], [3, 0], [3, 8], [-3, 8]], float)
    calibration = GroundCalibration.from_points(project(ground_to_image, marks), marks)
    areas = calibration.pixel_area_map(WIDTH, HEIGHT)
    assert np.isnan(areas[0, 0]) and np.isfinite(areas[-1, 0])
    assert np.isnan(calibration.to_ground([[WIDTH / 2, 0]])).all()
    with pytest.raises(CalibrationError, match="horizon"):
        calibration.polygon_area_m2([[0, 0], [100, 0], [100, 500], [0, 500]])


def test_to_ground_and_back_round_trip(camera):
    ground_to_image, calibration = camera
    ground = np.array([[0.5, 3.0], [-2.0, 11.0], [4.0, 7.5]])
    image = project(ground_to_image, ground)
    np.testing.assert_allclose(calibration.to_ground(image), ground, atol=1e-6)
    np.testing.assert_allclose(calibration.to_image(ground), image, atol=1e-4)


def test_least_squares_reports_reprojection_error():
    ground_to_image = pinhole_ground_to_image()
    rng = np.random.default_rng(1)
    marks = rng.uniform([-5, 0], [5, 15], size=(12, 2))
    pixels = project(ground_to_image, marks) + rng.normal(0, 1.0, size=(12, 2))
    calibration = GroundCalibration.from_points(pixels, marks)
    assert 0.0 < calibration.rms_error_m < 0.2
    assert calibration.max_error_m == pytest.approx(max(calibration.point_errors_m))


def test_from_rectangle_maps_corners_to_metres():
    corners = [(100, 500), (600, 480), (520, 220), (200, 230)]
    calibration = GroundCalibration.from_rectangle(corners, width_m=5.0, depth_m=12.0)
    np.testing.assert_allclose(
        calibration.to_ground(corners), [[0, 0], [5, 0], [5, 12], [0, 12]], atol=1e-6
    )
    assert calibration.polygon_area_m2(corners) == pytest.approx(60.0)


def test_scaled_calibration_matches_resized_image(camera):
    _, calibration = camera
    half = calibration.scaled(0.5)
    np.testing.assert_allclose(
        half.to_ground([[200, 250]]), calibration.to_ground([[400, 500]]), atol=1e-9
    )


def test_cropped_calibration_matches_sub_image(camera):
    _, calibration = camera
    crop = calibration.cropped(100, 50)
    np.testing.assert_allclose(
        crop.to_ground([[20, 30]]), calibration.to_ground([[120, 80]]), atol=1e-9
    )


def test_round_trips_through_dict(camera):
    _, calibration = camera
    restored = GroundCalibration.from_dict(calibration.to_dict())
    np.testing.assert_allclose(restored.homography, calibration.homography)
    assert restored.valid_sign == calibration.valid_sign


@pytest.mark.parametrize(
    ("image", "ground", "message"),
    [
        ([[0, 0], [10, 0], [0, 10]], [[0, 0], [1, 0], [0, 1]], "at least 4"),
        ([[0, 0], [10, 0], [10, 10], [0, 10]], [[0, 0], [1, 0], [1, 1]], "one ground point per"),
        ([[0, 0], [10, 0], [10, 10], [10, 10]], [[0, 0], [1, 0], [1, 1], [0, 1]], "same point"),
        ([[0, 0], [10, 0], [20, 0], [30, 0]], [[0, 0], [1, 0], [1, 1], [0, 1]], "one line"),
        ([[0, 0], [10, 0], [20, 0], [0, 10]], [[0, 0], [1, 0], [1, 1], [0, 1]], "collinear"),
        ([[0, 0], [10, 0], [10, np.nan], [0, 10]], [[0, 0], [1, 0], [1, 1], [0, 1]], "NaN"),
        ([[0, 0], [10, 0], [10, 10], [0, 10]], [[0, 0], [1, 0], [0, 1], [1, 1]], "folds"),
    ],
)
def test_degenerate_calibrations_are_rejected(image, ground, message):
    with pytest.raises(CalibrationError, match=message):
        GroundCalibration.from_points(image, ground)


def test_inconsistent_point_is_named():
    ground_to_image = pinhole_ground_to_image()
    marks = np.array([[-4, 0], [4, 0], [5, 10], [-5, 10], [0, 5], [2, 15]], float)
    pixels = project(ground_to_image, marks)
    wrong = marks.copy()
    wrong[4] += [3.0, 0.0]  # a mark measured 3 m off
    with pytest.raises(CalibrationError, match="inconsistent"):
        GroundCalibration.from_points(pixels, wrong)


def test_bad_rectangle_sides_are_rejected():
    with pytest.raises(CalibrationError, match="positive"):
        GroundCalibration.from_rectangle([(0, 0), (1, 0), (1, 1), (0, 1)], 0.0, 3.0)


def test_birds_eye_shows_ground_rectangle_upright(camera):
    ground_to_image, calibration = camera
    zone = project(ground_to_image, np.array([[-2, 4], [2, 4], [2, 8], [-2, 8]], float))
    image = np.zeros((HEIGHT, WIDTH), np.float32)
    cv2.fillPoly(image, [np.round(zone).astype(np.int32)], 1.0)
    top_down = calibration.birds_eye(image, metres_per_pixel=0.1, bounds=(-5, 0, 5, 12))
    assert top_down.shape == (120, 100)
    rows, columns = np.nonzero(top_down > 0.5)
    # x from -2 to 2 m -> columns 30..70; y from 4 to 8 m -> rows (12 - 8) / 0.1 .. (12 - 4) / 0.1
    assert columns.min() == pytest.approx(30, abs=2) and columns.max() == pytest.approx(70, abs=2)
    assert rows.min() == pytest.approx(40, abs=2) and rows.max() == pytest.approx(80, abs=2)


def test_one_person_reads_one_over_pi_near_and_far(camera):
    ground_to_image, calibration = camera
    mapper = GroundDensityMapper(calibration, (WIDTH, HEIGHT), radius_m=1.0)
    for ground in ([0.0, 2.0], [3.0, 16.0]):
        x, y = project(ground_to_image, np.array([ground]))[0]
        density = np.zeros((HEIGHT, WIDTH), np.float32)
        density[int(round(y)), int(round(x))] = 1.0
        per_m2 = mapper.per_m2(density)
        assert per_m2[int(round(y)), int(round(x))] == pytest.approx(1 / np.pi, rel=0.02)
        assert np.nanmax(per_m2) < 0.33  # no absurd peak at a far pixel


def test_people_one_metre_apart_read_one_per_square_metre(camera):
    ground_to_image, calibration = camera
    xs, ys = np.meshgrid(np.arange(-6, 7, 1.0), np.arange(0, 16, 1.0))
    people = project(ground_to_image, np.column_stack([xs.ravel(), ys.ravel()]))
    density = np.zeros((HEIGHT, WIDTH), np.float32)
    for x, y in people:
        if 0 <= x < WIDTH and 0 <= y < HEIGHT:
            density[int(round(y)), int(round(x))] += 1.0
    middle = project(ground_to_image, np.array([[0.5, 7.5]]))[0].round().astype(int)
    per_m2 = density_per_m2(density, calibration, radius_m=2.0)
    assert per_m2[middle[1], middle[0]] == pytest.approx(1.0, rel=0.1)
    # The zone measure agrees: people in a 5 m x 4 m zone over its area.
    zone = np.array([[-2.5, 5.5], [2.5, 5.5], [2.5, 9.5], [-2.5, 9.5]], float)
    zone_px = project(ground_to_image, zone)
    area = calibration.polygon_area_m2(zone_px)
    inside = cv2.pointPolygonTest
    count = sum(
        inside(zone_px.astype(np.float32), (float(x), float(y)), False) > 0 for x, y in people
    )
    assert area == pytest.approx(20.0)
    assert zone_density(count, area) == pytest.approx(1.0)


def scattered_people(camera, *, people: int, seed: int):
    """The camera's mapper and a density map of ``people`` one-pixel people on its ground."""
    _, calibration = camera
    mapper = GroundDensityMapper(calibration, (WIDTH, HEIGHT), bounds=(-15, -6, 15, 30))
    rng = np.random.default_rng(seed)
    density = np.zeros((HEIGHT, WIDTH), np.float32)
    density[rng.integers(300, 560, people), rng.integers(100, 700, people)] = 1.0
    return mapper, density


def test_ground_grid_conserves_people(camera):
    mapper, density = scattered_people(camera, people=20, seed=0)
    grid = mapper.ground_grid(density)
    assert grid.sum() * mapper.grid.cell_m**2 == pytest.approx(density.sum(), rel=1e-3)


def test_grid_read_on_a_reduced_field_matches_the_full_map_averaged(camera):
    """What crowd pressure reads (the grid at quarter-size pixels) is the per-pixel map's
    area mean there, without making the full-frame map."""
    mapper, density = scattered_people(camera, people=40, seed=1)
    grid = mapper.ground_grid(density)
    small = mapper.grid_at(grid, (HEIGHT // 4, WIDTH // 4))
    full = np.nan_to_num(mapper.grid_to_image(grid))
    averaged = cv2.resize(full, (WIDTH // 4, HEIGHT // 4), interpolation=cv2.INTER_AREA)
    assert small.shape == (HEIGHT // 4, WIDTH // 4)
    assert np.isfinite(small).all()
    seen = averaged > 0.05
    assert np.median(np.abs(small[seen] - averaged[seen]) / averaged[seen]) < 0.05
    assert small.sum() == pytest.approx(averaged.sum(), rel=0.05)


def test_ground_grid_convolves_only_the_occupied_box_and_matches_the_whole_grid():
    """On the shipped model's real PETS density maps (people on a few per cent of the grid),
    the occupied-box convolution gives the whole grid's convolution; an empty map, zeros."""
    from crowdwatch.config import load_config
    from crowdwatch.estimators.density import DensityEstimator
    from crowdwatch.pipeline.scene import build_scene
    from crowdwatch.types import Anchor

    estimator = DensityEstimator()
    camera_config = load_config(Path("sample_videos/pets2009_s2l1.yaml")).cameras[0]
    mapper = build_scene(camera_config, width=768, height=576, anchor=Anchor.HEAD).mapper
    capture = cv2.VideoCapture("sample_videos/pets2009_s2l1.mp4")
    for _ in range(3):
        for _ in range(60):
            capture.grab()
        density = estimator.estimate(capture.read()[1]).density
        counts = mapper.ground_counts(density)
        whole = cv2.filter2D(counts, -1, mapper._kernel, borderType=cv2.BORDER_CONSTANT)
        assert (counts > 0).mean() < 0.05
        np.testing.assert_allclose(mapper.ground_grid(density), whole, atol=1e-6)
    assert not mapper.ground_grid(np.zeros_like(density)).any()


def pets_data() -> Path:
    root = Path(
        os.environ.get("CROWDWATCH_DATA", Path(__file__).parents[1] / ".." / "shared" / "data")
    )
    path = root / "pets2009_vtest" / "mot15_gt.txt"
    if not path.exists():
        pytest.skip(f"PETS 2009 ground truth not found at {path}")
    return path


def test_pets_camera_from_six_marks_reproduces_every_ground_position():
    rows = np.loadtxt(pets_data(), delimiter=",")
    feet = np.column_stack([rows[:, 2] + rows[:, 4] / 2, rows[:, 3] + rows[:, 5]])
    ground = rows[:, 7:9]
    # Six marks spread over the plaza: the extremes of the ground positions and two middles.
    picks = [
        np.argmin(ground[:, 0]),
        np.argmax(ground[:, 0]),
        np.argmin(ground[:, 1]),
        np.argmax(ground[:, 1]),
        np.argmin(np.abs(ground - np.median(ground, axis=0)).sum(axis=1)),
        np.argmin(np.abs(ground - np.percentile(ground, 75, axis=0)).sum(axis=1)),
    ]
    calibration = GroundCalibration.from_points(feet[picks], ground[picks], max_error_m=1.0)
    errors = np.linalg.norm(calibration.to_ground(feet) - ground, axis=1)
    assert np.median(errors) < 0.25
    assert np.percentile(errors, 90) < 0.6
