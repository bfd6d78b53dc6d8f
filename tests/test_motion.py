"""Optical flow, ground velocity, counting-line flow and pressure on patterns of known motion."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from crowdwatch.calibration import GroundCalibration
from crowdwatch.motion import (
    CountingLine,
    DenseFlow,
    FlowStream,
    LineCrossingCounter,
    LineFlow,
    LineFlowCounter,
    LineFlowMeter,
    crossings_between,
    crowd_flow,
    crowd_pressure_map,
    crowd_velocity,
    density_flow,
    detect_stalled_flow,
    ground_velocity,
    line_flow,
    moving_mass,
    zone_mean_speed,
    zone_pressure,
)

WIDTH, HEIGHT = 320, 240
METRES_PER_PX = 0.05  # a camera looking straight down: 1 px = 5 cm on the ground
DT_S = 0.1


def top_down_calibration(width: int = WIDTH, height: int = HEIGHT) -> GroundCalibration:
    corners = [(0, 0), (width, 0), (width, height), (0, height)]
    return GroundCalibration.from_rectangle(
        corners, width_m=width * METRES_PER_PX, depth_m=height * METRES_PER_PX
    )


def texture(width: int = WIDTH, height: int = HEIGHT, seed: int = 0) -> np.ndarray:
    """A real PETS frame (real texture): the bundled sample clip, else the shared data."""
    repo = Path(__file__).resolve().parents[1]
    data = Path(os.environ.get("CROWDWATCH_DATA", repo.parent / "shared" / "data"))
    for video in (
        repo / "sample_videos" / "pets2009_s2l1.mp4",
        data / "pets2009_vtest" / "vtest.avi",
    ):
        capture = cv2.VideoCapture(str(video))
        ok, frame = capture.read()
        capture.release()
        if ok:
            return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
    noise = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 1.5)


def shifted(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(
        image, matrix, (image.shape[1], image.shape[0]), borderMode=cv2.BORDER_REFLECT
    )


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_flow_recovers_known_translation(method):
    image = texture()
    flow = DenseFlow(scale=0.5, method=method)(image, shifted(image, 4.0, -2.0))
    interior = flow[30:-30, 30:-30]
    assert np.median(interior[..., 0]) == pytest.approx(4.0, abs=0.3)
    assert np.median(interior[..., 1]) == pytest.approx(-2.0, abs=0.3)


def test_flow_stream_gives_none_then_flow():
    image = texture()
    stream = FlowStream(DenseFlow(scale=0.5))
    assert stream.update(image) is None
    flow = stream.update(shifted(image, 3.0, 0.0))
    assert flow is not None and flow.shape == (HEIGHT, WIDTH, 2)


def test_ground_velocity_in_metres_per_second():
    image = texture()
    flow = DenseFlow(scale=0.5)(image, shifted(image, 6.0, 0.0))
    velocity = ground_velocity(flow, top_down_calibration(), DT_S)
    # 6 px a frame x 5 cm / 0.1 s = 3 m/s along ground x.
    assert np.median(velocity[30:-30, 30:-30, 0]) == pytest.approx(3.0, abs=0.15)
    assert np.median(velocity[30:-30, 30:-30, 1]) == pytest.approx(0.0, abs=0.15)


def test_line_flow_of_uniform_crowd_moving_at_known_speed():
    """A crowd of 0.4 people/m² crossing a line at 1.5 m/s carries 36 people/m/min."""
    image = texture()
    flow = DenseFlow(scale=0.5)(image, shifted(image, 3.0, 0.0))  # 3 px/frame = 1.5 m/s
    people_per_px = 0.4 * METRES_PER_PX**2
    density = np.full((HEIGHT, WIDTH), people_per_px, np.float32)
    line = CountingLine("gate", (WIDTH / 2, 40), (WIDTH / 2, HEIGHT - 40), positive="left")
    result = line_flow(density, flow, line, top_down_calibration(), DT_S)
    assert result.length_m == pytest.approx((HEIGHT - 80) * METRES_PER_PX)
    assert result.positive_per_m_min == pytest.approx(36.0, rel=0.08)
    assert result.negative_per_m_min == pytest.approx(0.0, abs=1.0)


WALKER_W, WALKER_H = 16, 40


def render_walkers(centres: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Textured person-sized boxes (16 x 40 px) pasted over a static textured background."""
    frame = background.copy()
    # Clothes-like patches of colour a few pixels across (not pixel noise, which no camera sees).
    coarse = np.random.default_rng(7).integers(0, 255, (WALKER_H // 5, WALKER_W // 4, 3))
    body = cv2.resize(coarse.astype(np.uint8), (WALKER_W, WALKER_H), interpolation=cv2.INTER_CUBIC)
    for x, y in centres:
        x0, y0 = int(round(x)) - WALKER_W // 2, int(round(y)) - WALKER_H // 2
        if x0 >= 0 and y0 >= 0 and x0 + WALKER_W <= frame.shape[1]:
            frame[y0 : y0 + WALKER_H, x0 : x0 + WALKER_W] = body
    return frame


def gaussian_density(centres: np.ndarray, sigma: float = 6.0) -> np.ndarray:
    density = np.zeros((HEIGHT, WIDTH), np.float32)
    for x, y in centres:
        if 0 <= x < WIDTH and 0 <= y < HEIGHT:
            density[int(round(y)), int(round(x))] += 1.0
    return cv2.GaussianBlur(density, (0, 0), sigma)


def test_line_flow_integrates_to_the_people_that_crossed():
    """Six walkers (textured boxes with a density blob each) cross a line, three each way."""
    background = texture()
    # Those going right pass the line before those going left arrive: no occlusions.
    start = np.array([[60, 30], [40, 90], [70, 150], [330, 210], [360, 180], [300, 60]], float)
    velocity = np.array([[3, 0], [3, 0], [3, 0], [-3, 0], [-3, 0], [-3, 0]], float)
    line = CountingLine("middle", (WIDTH / 2, 20), (WIDTH / 2, HEIGHT - 20), positive="left")
    calibration = top_down_calibration()
    flow_of = DenseFlow(scale=0.5)
    tracked = LineCrossingCounter(line)
    positive = negative = 0.0
    previous = render_walkers(start, background)
    tracked.update(range(len(start)), start)
    for step in range(1, 85):
        centres = start + step * velocity
        frame = render_walkers(centres, background)
        result = line_flow(
            gaussian_density(centres), flow_of(previous, frame), line, calibration, DT_S
        )
        positive += result.positive_people
        negative += result.negative_people
        tracked.update(range(len(centres)), centres)
        previous = frame
    assert (tracked.positive, tracked.negative) == (3, 3)
    # Flow at a body's edges blends with the still background: the flux reads ~8% low.
    assert positive == pytest.approx(3.0, rel=0.15)
    assert negative == pytest.approx(3.0, rel=0.15)
    assert positive < 3.05 and negative < 3.05


def test_crossings_need_the_segment_not_its_extension():
    line = CountingLine("door", (100, 0), (100, 50), positive="left")  # a downward line
    before = np.array([[90, 10], [110, 20], [90, 80]], float)
    after = np.array([[110, 10], [90, 20], [110, 80]], float)
    # Going down the image, "left" is image +x: the first point crosses positively, the second
    # negatively, the third passes below the segment.
    assert crossings_between(before, after, line) == (1, 1)


def test_crossing_counter_follows_tracks_across_missing_frames():
    line = CountingLine("l", (0, 100), (200, 100))  # rightward line: positive is down the image
    counter = LineCrossingCounter(line)
    counter.update([1, 2], np.array([[50, 80], [150, 120]], float))
    counter.update([1], np.array([[50, 95]], float))
    counter.update([1, 2], np.array([[50, 110], [150, 90]], float))
    assert (counter.positive, counter.negative) == (1, 1)


def test_crowd_flow_spreads_walker_velocity_over_its_density():
    flow = np.zeros((HEIGHT, WIDTH, 2), np.float32)
    flow[100:120, 150:160, 0] = 2.0  # the walker's body
    velocity = crowd_flow(flow, sigma_px=6.0)
    assert velocity[110, 145, 0] == pytest.approx(2.0, rel=0.01)  # beside the body
    assert velocity[20, 20, 0] == 0.0  # far from anything that moves


def test_pressure_is_zero_for_uniform_motion_and_positive_for_counterflow():
    people = np.full((HEIGHT, WIDTH), 1e-3, np.float32)
    density_m2 = np.full((HEIGHT, WIDTH), 3.0, np.float32)
    uniform = np.zeros((HEIGHT, WIDTH, 2), np.float32)
    uniform[..., 0] = 1.2
    assert np.abs(crowd_pressure_map(density_m2, uniform, people)).max() < 1e-4
    counterflow = uniform.copy()
    counterflow[::2, :, 0] = -1.2  # alternate rows move opposite ways
    pressure = crowd_pressure_map(density_m2, counterflow, people)
    assert pressure[HEIGHT // 2, WIDTH // 2] == pytest.approx(3.0 * 1.2**2, rel=0.05)
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[50:150, 50:150] = True
    assert zone_pressure(3.0, counterflow, people, mask) == pytest.approx(3.0 * 1.44, rel=0.01)
    assert zone_pressure(3.0, uniform, people, mask) == pytest.approx(0.0, abs=1e-9)


def test_stalled_flow_is_rising_density_with_falling_flow():
    times = np.arange(0, 121, 5.0)
    rising = 1.5 + times / 60
    falling_flow = 70 - times / 4
    steady_flow = np.full_like(times, 70.0)
    assert detect_stalled_flow(times, rising, falling_flow).stalled
    assert not detect_stalled_flow(times, rising, steady_flow).stalled
    assert not detect_stalled_flow(times, rising[::-1], falling_flow).stalled


def test_line_outside_frame_is_rejected():
    line = CountingLine("off", (1000, 1000), (1100, 1000))
    density = np.zeros((HEIGHT, WIDTH), np.float32)
    with pytest.raises(ValueError, match="outside"):
        line_flow(
            density, np.zeros((HEIGHT, WIDTH, 2), np.float32), line, top_down_calibration(), DT_S
        )


def test_ground_velocity_through_a_perspective_camera():
    """A walker seen at an angle, moving 1.4 m/s along ground x, reads 1.4 m/s."""
    # Image <- ground homography of a tilted camera (rows: K [r1 r2 t] for a 35 degree tilt).
    ground_to_image = np.array([[700.0, 314.6, 4907.6], [0.0, -165.6, 4252.9], [0.0, 0.82, 12.8]])

    def project(points: np.ndarray) -> np.ndarray:
        homogeneous = np.column_stack([points, np.ones(len(points))]) @ ground_to_image.T
        return homogeneous[:, :2] / homogeneous[:, 2:3]

    marks = np.array([[-4, 0], [4, 0], [5, 10], [-5, 10]], float)
    calibration = GroundCalibration.from_points(project(marks), marks)
    before, after = project(np.array([[0.0, 2.0], [0.14, 2.0]]))
    flow = np.zeros((576, 768, 2), np.float32)
    flow[..., :] = after - before  # the walker's displacement over 0.1 s
    velocity = ground_velocity(flow, calibration, 0.1)
    x, y = np.round(before).astype(int)
    np.testing.assert_allclose(velocity[y, x], [1.4, 0.0], atol=0.02)


def test_zone_speed_and_crowd_velocity_of_a_translating_scene():
    image = texture()
    flow = DenseFlow()(image, shifted(image, 4.0, 0.0))  # 4 px x 5 cm / 0.1 s = 2 m/s
    velocity = crowd_velocity(flow, top_down_calibration(), DT_S)
    people = np.zeros((HEIGHT, WIDTH), np.float32)
    people[100:140, 100:200] = 0.01
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[80:160, 80:220] = True
    assert zone_mean_speed(velocity, people, mask) == pytest.approx(2.0, rel=0.05)
    assert zone_mean_speed(velocity, np.zeros_like(people), mask) == 0.0


def test_density_flow_keeps_crossings_apart_when_one_walker_hides_another():
    """B walks left behind A, who walks right in front and hides B's feet as both cross.

    At B's feet the image moves with A, so image flow would push B's mass the wrong way; the
    density maps' own motion moves each blob with its walker.
    """
    background = texture()
    line = CountingLine("middle", (WIDTH / 2, 20), (WIDTH / 2, HEIGHT - 20), positive="left")
    calibration = top_down_calibration()
    flow = DenseFlow()
    feet_a, feet_b = np.array([100.0, 150.0]), np.array([220.0, 125.0])
    step_a, step_b = np.array([3.0, 0.0]), np.array([-3.0, 0.0])
    positive = negative = 0.0
    previous = None
    for step in range(40):
        a, b = feet_a + step * step_a, feet_b + step * step_b
        # B first, then A over it: A's body (40 px tall above its feet) covers B's feet.
        frame = render_walkers(np.array([b - [0, WALKER_H / 2]]), background)
        frame = render_walkers(np.array([a - [0, WALKER_H / 2]]), frame)
        density = gaussian_density(np.array([a, b]), sigma=4.0)
        if previous is not None:
            motion = density_flow(previous, density, flow)
            result = line_flow(density, motion, line, calibration, DT_S)
            positive += result.positive_people
            negative += result.negative_people
        previous = density
    assert positive == pytest.approx(1.0, abs=0.15)
    assert negative == pytest.approx(1.0, abs=0.15)


def test_density_flow_of_empty_maps_is_still():
    empty = np.zeros((HEIGHT, WIDTH), np.float32)
    assert not density_flow(empty, empty).any()


def test_flow_counter_cancels_back_and_forth_within_its_window():
    """A blob jittering across the line reads +-0.3 a frame; one real crossing reads +1."""

    def interval(net: float) -> LineFlow:
        profile = np.zeros(16)
        profile[5] = net
        return LineFlow("l", 4.0, 0.1, max(net, 0) / 0.1, max(-net, 0) / 0.1, profile)

    counter = LineFlowCounter(window_s=1.0)
    for net in [0.3, -0.3] * 10 + [0.25] * 4:
        counter.update(interval(net))
    assert counter.positive == pytest.approx(1.0)
    assert counter.negative == pytest.approx(0.0)


def test_meter_counts_the_hidden_walker_with_density_motion():
    background = texture()
    line = CountingLine("middle", (WIDTH / 2, 20), (WIDTH / 2, HEIGHT - 20), positive="left")
    meters = {
        motion: LineFlowMeter([line], top_down_calibration(), DT_S, motion=motion)
        for motion in ("density", "image")
    }
    feet_a, feet_b = np.array([100.0, 150.0]), np.array([220.0, 125.0])
    for step in range(40):
        a, b = feet_a + step * np.array([3.0, 0.0]), feet_b + step * np.array([-3.0, 0.0])
        frame = render_walkers(np.array([b - [0, WALKER_H / 2]]), background)
        frame = render_walkers(np.array([a - [0, WALKER_H / 2]]), frame)
        density = gaussian_density(np.array([a, b]), sigma=4.0)
        flows = {motion: meter.update(density, frame) for motion, meter in meters.items()}
    assert set(flows["density"]) == {"middle"}
    positive, negative = meters["density"].crossings("middle")
    assert positive == pytest.approx(1.0, abs=0.2)
    assert negative == pytest.approx(1.0, abs=0.2)
    # The frames' flow at B's hidden feet is A's: B's crossing goes the wrong way.
    assert meters["image"].crossings("middle")[1] < 0.3


def test_meter_rejects_duplicate_line_names():
    line = CountingLine("gate", (0, 10), (50, 10))
    with pytest.raises(ValueError, match="distinct"):
        LineFlowMeter([line, line], top_down_calibration(), DT_S)


def test_moving_mass_keeps_what_moved_and_drops_what_appeared():
    before = gaussian_density(np.array([[100.0, 120.0]]))
    after = gaussian_density(np.array([[104.0, 120.0], [250.0, 60.0]]))  # one moved, one is new
    flow = np.zeros((HEIGHT, WIDTH, 2), np.float32)
    flow[..., 0] = 4.0
    kept = moving_mass(before, after, flow)
    assert kept[100:140, 80:130].sum() == pytest.approx(1.0, abs=0.02)
    assert kept[40:80, 230:270].sum() == pytest.approx(0.0, abs=1e-6)
