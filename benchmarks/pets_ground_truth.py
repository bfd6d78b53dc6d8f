"""crowdwatch's metric measures against the PETS 2009 S2L1 ground truth (MOT15 ``PETS09-S2L1``).

The ground truth gives every person's box and ground position in metres, so it checks three
things end to end on real video:

(a) calibration: a homography from six foot points spread over the plaza, and the error with
    which it reproduces the ground positions of all the other 4,644 boxes;
(b) people per m² in a ground region: an estimator's density map summed over the region's image
    polygon, over the polygon's ground area, against the people the tracks put in the region;
(c) a counting line: crossings per direction from density x optical-flow flux, and from tracked
    points, against the crossings of the ground-truth tracks on the ground.

Estimators: ``gt`` (the ground-truth boxes turned into a density map as a detector's would be:
it isolates calibration and flow errors from detection errors) and ``ssd`` (crowdwatch's
SSD-MobileNet-v2 person detector); ``density`` (the density-map counter) when its model exists.

Usage:
    python benchmarks/pets_ground_truth.py                 # gt and ssd, whole clip (~3 min)
    python benchmarks/pets_ground_truth.py --estimators gt --frames 200
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from crowdwatch.calibration import GroundCalibration, GroundDensityMapper
from crowdwatch.estimators.boxes import estimate_from_boxes
from crowdwatch.motion import CountingLine, DenseFlow, LineCrossingCounter, LineFlowMeter
from crowdwatch.types import Estimate

#: The original sequence's capture rate; the .avi container says 10 fps (see the data README).
REAL_FPS = 7.0
#: Ground region for people per m² (x_min, y_min, x_max, y_max), metres: the plaza's busy middle.
REGION_M = (-10.0, -10.0, -4.0, -4.0)
#: Counting line on the ground, metres: across the plaza's main north-south walking path.
LINE_M = ((-10.0, -7.0), (-1.0, -7.0))
#: Calibration marks taken from the ground truth, as a surveyor would take them.
CALIBRATION_MARKS = 6


def data_root() -> Path:
    default = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    return Path(os.environ.get("CROWDWATCH_DATA", default))


@dataclass(frozen=True)
class GroundTruth:
    """MOT15 rows: 0-based video frame, track id, box (x1, y1, x2, y2), feet pixel, ground m."""

    frame: np.ndarray
    track: np.ndarray
    boxes: np.ndarray
    feet_px: np.ndarray
    head_px: np.ndarray
    ground_m: np.ndarray

    @classmethod
    def load(cls, path: Path) -> GroundTruth:
        rows = np.loadtxt(path, delimiter=",")
        left, top, width, height = rows[:, 2], rows[:, 3], rows[:, 4], rows[:, 5]
        return cls(
            frame=rows[:, 0].astype(int) - 1,  # MOT frames are 1-based video index + 1
            track=rows[:, 1].astype(int),
            boxes=np.column_stack([left, top, left + width, top + height]),
            feet_px=np.column_stack([left + width / 2, top + height]),
            head_px=np.column_stack([left + width / 2, top + 0.08 * height]),
            ground_m=rows[:, 7:9],
        )

    def in_frame(self, index: int) -> np.ndarray:
        return self.frame == index


# ----- (a) calibration ------------------------------------------------------------------------


def spread_points(points: np.ndarray, count: int) -> np.ndarray:
    """Indices of ``count`` points spread out (farthest-point sampling from the most central)."""
    chosen = [int(np.argmin(np.linalg.norm(points - np.median(points, axis=0), axis=1)))]
    distance = np.linalg.norm(points - points[chosen[0]], axis=1)
    while len(chosen) < count:
        chosen.append(int(np.argmax(distance)))
        distance = np.minimum(distance, np.linalg.norm(points - points[chosen[-1]], axis=1))
    return np.array(chosen)


def head_plane_calibration(truth: GroundTruth) -> GroundCalibration:
    """Image -> ground homography of the plane of heads (~1.7 m up), from six head points.

    Density-map counters put each person's mass on the head; a ground zone drawn at the feet
    misses it. The plane of heads is parallel to the ground, so it too maps to ground metres by a
    homography: head pixel -> the ground position below it.
    """
    marks = spread_points(truth.ground_m, CALIBRATION_MARKS)
    calibration = GroundCalibration.from_points(truth.head_px[marks], truth.ground_m[marks])
    errors = np.linalg.norm(calibration.to_ground(truth.head_px) - truth.ground_m, axis=1)
    print(
        f"    head plane from the same {CALIBRATION_MARKS} people's heads: median "
        f"{np.median(errors):.3f} m, p90 {np.percentile(errors, 90):.3f} m "
        "(people differ in height)"
    )
    return calibration


#: Where each estimator puts a person's mass: the plane its calibration must describe.
ANCHORS = {"gt": "feet", "ssd": "feet", "density": "head"}


def check_calibration(truth: GroundTruth) -> GroundCalibration:
    marks = spread_points(truth.ground_m, CALIBRATION_MARKS)
    calibration = GroundCalibration.from_points(truth.feet_px[marks], truth.ground_m[marks])
    others = np.setdiff1d(np.arange(len(truth.frame)), marks)
    errors = np.linalg.norm(
        calibration.to_ground(truth.feet_px[others]) - truth.ground_m[others], axis=1
    )
    _, distinct = np.unique(truth.ground_m, axis=0, return_index=True)  # people standing still
    everything = GroundCalibration.from_points(
        truth.feet_px[distinct], truth.ground_m[distinct], max_error_m=5.0
    )
    print("(a) calibration from", CALIBRATION_MARKS, "ground-truth foot points")
    print(f"    fit RMS {calibration.rms_error_m:.3f} m at its own marks")
    print(
        f"    other {len(others)} positions: median {np.median(errors):.3f} m, "
        f"p90 {np.percentile(errors, 90):.3f} m, max {errors.max():.3f} m"
    )
    print(
        f"    (least squares over all {len(distinct)} distinct points: "
        f"RMS {everything.rms_error_m:.3f} m, median {np.median(everything.point_errors_m):.3f} m)"
    )
    return calibration


# ----- estimators -----------------------------------------------------------------------------

EstimateFn = Callable[[int, np.ndarray], Estimate]


def ground_truth_estimator(truth: GroundTruth) -> EstimateFn:
    """The ground-truth boxes as a detector's Estimate (feet Gaussians), with track ids."""

    def estimate(index: int, image: np.ndarray) -> Estimate:
        rows = truth.in_frame(index)
        boxes = truth.boxes[rows].astype(np.float32)
        return estimate_from_boxes(
            boxes, np.ones(len(boxes), np.float32), image.shape[:2], truth.track[rows]
        )

    return estimate


def model_estimator(name: str) -> EstimateFn:
    if name == "ssd":
        from crowdwatch.estimators.ssd import SsdPersonDetector

        model = SsdPersonDetector()
    elif name == "density":
        from crowdwatch.estimators.density import DensityEstimator

        model = DensityEstimator()
    else:
        raise ValueError(f"unknown estimator {name!r}")
    return lambda index, image: model.estimate(image)


class GroundTracker:
    """Links points between frames on the ground (Hungarian, gated): ids for crossing counts."""

    def __init__(self, calibration: GroundCalibration, gate_m: float = 1.0) -> None:
        self.calibration = calibration
        self.gate_m = gate_m
        self._last: dict[int, np.ndarray] = {}
        self._next_id = 0

    def update(self, points_px: np.ndarray) -> np.ndarray:
        ground = self.calibration.to_ground(points_px) if len(points_px) else np.zeros((0, 2))
        ids = -np.ones(len(ground), int)
        known = list(self._last)
        if known and len(ground):
            previous = np.array([self._last[i] for i in known])
            cost = np.linalg.norm(ground[:, None] - previous[None], axis=2)
            rows, cols = linear_sum_assignment(np.nan_to_num(cost, nan=1e9))
            for row, col in zip(rows, cols, strict=True):
                if cost[row, col] <= self.gate_m:
                    ids[row] = known[col]
        for row in np.flatnonzero(ids < 0):
            ids[row] = self._next_id
            self._next_id += 1
        self._last = {int(i): g for i, g in zip(ids, ground, strict=True)}
        return ids


# ----- (b) and (c) ----------------------------------------------------------------------------


def region_polygon_px(calibration: GroundCalibration) -> np.ndarray:
    x0, y0, x1, y1 = REGION_M
    return calibration.to_image([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])


def true_region_counts(truth: GroundTruth, frames: int) -> np.ndarray:
    x0, y0, x1, y1 = REGION_M
    gx, gy = truth.ground_m[:, 0], truth.ground_m[:, 1]
    inside = (gx >= x0) & (gx <= x1) & (gy >= y0) & (gy <= y1)
    return np.bincount(truth.frame[inside], minlength=frames)[:frames].astype(float)


def true_region_speeds(truth: GroundTruth, frames: int, span: int = 2) -> np.ndarray:
    """Mean walking speed (m/s) of the people in the region, per frame; NaN when it is empty.

    Each person's speed is the central difference of their ground track over ``span`` frames
    each side (|p(t + span) - p(t - span)| / (2 span / 7 fps)), which smooths the annotation's
    jitter; people whose track does not reach that far either side are left out.
    """
    x0, y0, x1, y1 = REGION_M
    position = {
        (int(f), int(t)): g
        for f, t, g in zip(truth.frame, truth.track, truth.ground_m, strict=True)
    }
    sums, counts = np.zeros(frames), np.zeros(frames)
    for (frame, track), (gx, gy) in position.items():
        if not (0 <= frame < frames and x0 <= gx <= x1 and y0 <= gy <= y1):
            continue
        before, after = position.get((frame - span, track)), position.get((frame + span, track))
        if before is None or after is None:
            continue
        sums[frame] += float(np.hypot(*(after - before))) * REAL_FPS / (2 * span)
        counts[frame] += 1
    with np.errstate(invalid="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def counting_line(calibration: GroundCalibration) -> CountingLine:
    start, end = calibration.to_image(LINE_M)
    return CountingLine("plaza", tuple(start), tuple(end), positive="right")


def positive_ground_side(calibration: GroundCalibration, line: CountingLine) -> float:
    """The sign, on the ground, of the image line's positive side."""
    middle = (np.asarray(line.start) + np.asarray(line.end)) / 2
    probe = calibration.to_ground([middle + 5 * line.unit_normal()])[0]
    (ax, ay), (bx, by) = LINE_M
    return float(np.sign((bx - ax) * (probe[1] - ay) - (by - ay) * (probe[0] - ax)))


def true_line_crossings(truth: GroundTruth, sign: float, frames: int) -> tuple[int, int]:
    """(positive, negative) crossings of the ground-truth tracks, computed on the ground."""
    (ax, ay), (bx, by) = LINE_M
    a, b = np.array([ax, ay]), np.array([bx, by])
    positive = negative = 0
    for track in np.unique(truth.track):
        rows = np.flatnonzero((truth.track == track) & (truth.frame < frames))
        path = truth.ground_m[rows[np.argsort(truth.frame[rows])]]
        side = np.sign((b[0] - a[0]) * (path[:, 1] - a[1]) - (b[1] - a[1]) * (path[:, 0] - a[0]))
        for i in np.flatnonzero(side[:-1] * side[1:] < 0):
            p, q = path[i], path[i + 1]
            t = _segment_parameter(a, b, p, q)
            if 0 <= t <= 1:
                if side[i + 1] == sign:
                    positive += 1
                else:
                    negative += 1
    return positive, negative


def _segment_parameter(a: np.ndarray, b: np.ndarray, p: np.ndarray, q: np.ndarray) -> float:
    d, s, o = b - a, q - p, p - a
    return float((o[0] * s[1] - o[1] * s[0]) / (d[0] * s[1] - d[1] * s[0]))


def video_frames(path: Path, limit: int) -> Iterator[tuple[int, np.ndarray]]:
    capture = cv2.VideoCapture(str(path))
    index = 0
    while index < limit:
        ok, image = capture.read()
        if not ok:
            break
        yield index, image
        index += 1
    capture.release()


@dataclass
class RunResult:
    region_counts: np.ndarray
    flux: dict[str, tuple[float, float]]  # motion source -> (positive, negative) crossings
    tracked_positive: int
    tracked_negative: int
    estimate_ms: float
    meter_ms: dict[str, float]  # motion source -> ms per frame (flow + flux)


def run_estimator(
    estimate: EstimateFn,
    video: Path,
    frames: int,
    calibration: GroundCalibration,
    line: CountingLine,
) -> RunResult:
    mask = np.zeros((576, 768), np.uint8)
    cv2.fillPoly(mask, [np.round(region_polygon_px(calibration)).astype(np.int32)], 1)
    inside = mask.astype(bool)
    meters = {
        motion: LineFlowMeter([line], calibration, 1.0 / REAL_FPS, motion=motion)
        for motion in ("image", "density")
    }
    tracker = GroundTracker(calibration)
    crossings = LineCrossingCounter(line)
    counts = np.zeros(frames)
    timing = {"estimate": 0.0, "image": 0.0, "density": 0.0}
    for index, image in video_frames(video, frames):
        started = time.perf_counter()
        result = estimate(index, image)
        timing["estimate"] += time.perf_counter() - started
        counts[index] = result.count_in(inside)
        ids = result.track_ids if result.track_ids is not None else tracker.update(result.points)
        crossings.update(ids, result.points)
        for motion, meter in meters.items():
            started = time.perf_counter()
            meter.update(result.density, image)
            timing[motion] += time.perf_counter() - started
    return RunResult(
        region_counts=counts,
        flux={motion: meter.crossings(line.name) for motion, meter in meters.items()},
        tracked_positive=crossings.positive,
        tracked_negative=crossings.negative,
        estimate_ms=timing["estimate"] / frames * 1000,
        meter_ms={motion: timing[motion] / frames * 1000 for motion in meters},
    )


def report_region(name: str, counts: np.ndarray, truth: np.ndarray, area_m2: float) -> None:
    measured, expected = counts / area_m2, truth / area_m2
    error = measured - expected
    print(
        f"    {name:13s} mean {measured.mean():.4f} vs true {expected.mean():.4f} people/m²; "
        f"MAE {np.abs(error).mean():.4f} /m² (count MAE {np.abs(counts - truth).mean():.2f}, "
        f"bias {error.mean():+.4f} /m²); peak true {expected.max():.3f} /m²"
    )


def measure_mapper_speed(calibration: GroundCalibration) -> float:
    mapper = GroundDensityMapper(calibration, (768, 576))
    density = np.zeros((576, 768), np.float32)
    density[300:320, 300:320] = 0.01
    started = time.perf_counter()
    for _ in range(10):
        mapper.per_m2(density)
    return (time.perf_counter() - started) / 10 * 1000


def measure_flow_speed(video: Path, pairs: int = 40) -> float:
    frames = [image for _, image in video_frames(video, pairs + 1)]
    flow = DenseFlow()
    started = time.perf_counter()
    for previous, current in zip(frames, frames[1:], strict=False):
        flow(previous, current)
    return (time.perf_counter() - started) / pairs * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--estimators", nargs="+", default=["gt", "ssd"])
    parser.add_argument("--frames", type=int, default=795)
    parser.add_argument(
        "--anchor",
        choices=["feet", "head"],
        help="the plane every estimator's mass is mapped on (default: feet for gt and ssd, "
        "head for density)",
    )
    args = parser.parse_args()
    folder = data_root() / "pets2009_vtest"
    if not (folder / "mot15_gt.txt").exists():
        raise SystemExit(f"PETS ground truth not found in {folder} (set CROWDWATCH_DATA)")
    truth = GroundTruth.load(folder / "mot15_gt.txt")
    frames = min(args.frames, int(truth.frame.max()) + 1)

    calibration = check_calibration(truth)
    planes = {"feet": calibration, "head": head_plane_calibration(truth)}
    polygon = region_polygon_px(calibration)
    area = calibration.polygon_area_m2(polygon)
    true_counts = true_region_counts(truth, frames)
    line = counting_line(calibration)
    sign = positive_ground_side(calibration, line)
    true_positive, true_negative = true_line_crossings(truth, sign, frames)
    length = line.ground_length_m(calibration)
    minutes = frames / REAL_FPS / 60

    results = {}
    for name in args.estimators:
        estimate = ground_truth_estimator(truth) if name == "gt" else model_estimator(name)
        plane = planes[args.anchor or ANCHORS[name]]
        plane_line = counting_line(plane)
        if positive_ground_side(plane, plane_line) != sign:
            raise SystemExit("the head and feet lines disagree on the positive side")
        results[f"{name}@{args.anchor or ANCHORS[name]}"] = run_estimator(
            estimate, folder / "vtest.avi", frames, plane, plane_line
        )

    print(f"(b) people per m² in ground region {REGION_M} m: {area:.2f} m² by the calibration")
    print(f"    over {frames} frames; per-frame errors")
    for name, result in results.items():
        report_region(name, result.region_counts, true_counts, area)
    print(f"(c) counting line {LINE_M} m, {length:.2f} m on the ground, {minutes:.2f} min of video")
    print(
        f"    ground truth tracks: {true_positive} positive, {true_negative} negative "
        f"({(true_positive + true_negative) / length / minutes:.2f} people/m/min both ways)"
    )
    true_total = true_positive + true_negative
    for name, result in results.items():
        for motion, (plus, minus) in result.flux.items():
            print(
                f"    {name:13s} density x {motion:7s} flow: {plus:5.2f} positive, "
                f"{minus:5.2f} negative "
                f"(errors {plus - true_positive:+.2f}, {minus - true_negative:+.2f}; "
                f"total {(plus + minus - true_total) / true_total:+.1%})"
            )
        print(
            f"    {name:13s} tracked points: {result.tracked_positive} positive, "
            f"{result.tracked_negative} negative"
        )
    print("speed, ms per 768x576 frame (this machine, shared CPU):")
    for name, result in results.items():
        print(
            f"    {name:13s} estimator {result.estimate_ms:.1f}; line meter with image flow "
            f"{result.meter_ms['image']:.1f}, with density flow {result.meter_ms['density']:.1f}"
        )
    mapper_ms = measure_mapper_speed(calibration)
    print(f"    people per m² map (GroundDensityMapper.per_m2) {mapper_ms:.1f}")
    print(f"    DenseFlow alone {measure_flow_speed(folder / 'vtest.avi'):.1f}")


if __name__ == "__main__":
    main()
