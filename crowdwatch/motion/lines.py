"""Counting lines: flow rate across a line from density x velocity, and tracked crossings.

The flow rate is the flux of the density map through the line in the image: people per pixel²
times their velocity (pixels per frame) across the line, summed along it, is people per frame.
That holds for blobs, not only for tracked people, so it works in crowds too dense to track;
and it does not matter whether an estimator puts a person's mass on the head, torso or feet,
as long as the velocity is that of the mass. The calibration turns the rate into people per
metre of the line's ground length per minute, the unit of crowd-safety flow bands.

Where the velocity comes from is the crux. The frames' optical flow is the motion of whatever
is visible, which at a hidden person's feet is the person in front (on PETS 2009 it reads the
direction of a third of the crossings wrong). The density maps' own motion moves each person's
blob with that person, and works as long as blobs stay apart. :class:`LineFlowMeter` does
either and cancels the back-and-forth of jittering detections.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

from crowdwatch.calibration.homography import GroundCalibration
from crowdwatch.heatmap.density import reduce_mass
from crowdwatch.motion.optical_flow import (
    DEFAULT_MIN_MOTION_PX,
    DenseFlow,
    crowd_flow,
    density_flow,
    moving_mass,
)

Side = Literal["left", "right"]
MotionSource = Literal["density", "image"]


@dataclass(frozen=True)
class CountingLine:
    """A line segment in the image across which people are counted.

    Looking along ``start`` -> ``end`` in the image as displayed (y pointing down), crossings
    towards the ``positive`` hand count as positive ("in"), the others as negative ("out").

    Example:
        >>> line = CountingLine("gate", (0, 100), (200, 100))  # left to right
        >>> line.unit_normal()  # "right" of a rightward line is down the image
        array([0., 1.])
    """

    name: str
    start: tuple[float, float]
    end: tuple[float, float]
    positive: Side = "right"

    def __post_init__(self) -> None:
        if self.positive not in ("left", "right"):
            raise ValueError(f"line {self.name!r}: positive must be 'left' or 'right'")
        if np.hypot(self.end[0] - self.start[0], self.end[1] - self.start[1]) < 1.0:
            raise ValueError(f"line {self.name!r} is shorter than a pixel: {self.start}-{self.end}")

    @property
    def length_px(self) -> float:
        """Length in image pixels."""
        return float(np.hypot(self.end[0] - self.start[0], self.end[1] - self.start[1]))

    def unit_normal(self) -> np.ndarray:
        """Unit image vector pointing to the positive side."""
        dx, dy = self.end[0] - self.start[0], self.end[1] - self.start[1]
        right = np.array([-dy, dx], dtype=np.float64) / np.hypot(dx, dy)
        return right if self.positive == "right" else -right

    def side_of(self, points: np.ndarray) -> np.ndarray:
        """Signed side (N,) of image points: > 0 on the positive side, < 0 on the other."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        return (points - np.asarray(self.start, dtype=np.float64)) @ self.unit_normal()

    def ground_length_m(self, calibration: GroundCalibration) -> float:
        """Length of the line on the ground, in metres."""
        return calibration.segment_length_m(self.start, self.end)


#: Stretches the flux along a line is tallied in (see :class:`LineFlowCounter`).
DEFAULT_LINE_BINS = 16


@dataclass(frozen=True, eq=False)
class LineFlow:
    """The flow across one counting line during one frame interval.

    ``positive_per_s`` / ``negative_per_s`` are people per second crossing each way (summed
    over frames times ``dt_s`` they give crossings); the ``*_per_m_min`` fields divide them by the
    line's ground length and give people per metre per minute. ``profile`` is the net number of
    people (positive minus negative) that crossed each of the line's equal stretches during the
    interval, start to end.
    """

    line: str
    length_m: float
    dt_s: float
    positive_per_s: float
    negative_per_s: float
    profile: np.ndarray = field(default_factory=lambda: np.zeros(DEFAULT_LINE_BINS))

    @property
    def positive_per_m_min(self) -> float:
        """Flow towards the positive side, people per metre per minute."""
        return self.positive_per_s * 60.0 / self.length_m

    @property
    def negative_per_m_min(self) -> float:
        """Flow towards the negative side, people per metre per minute."""
        return self.negative_per_s * 60.0 / self.length_m

    @property
    def total_per_m_min(self) -> float:
        """Both directions together, people per metre per minute."""
        return self.positive_per_m_min + self.negative_per_m_min

    @property
    def positive_people(self) -> float:
        """People that crossed towards the positive side during this interval."""
        return self.positive_per_s * self.dt_s

    @property
    def negative_people(self) -> float:
        """People that crossed towards the negative side during this interval."""
        return self.negative_per_s * self.dt_s


def line_flow(
    density: np.ndarray,
    flow: np.ndarray,
    line: CountingLine,
    calibration: GroundCalibration,
    dt_s: float,
    sigma_px: float = 6.0,
    min_motion_px: float = DEFAULT_MIN_MOTION_PX,
    step_px: float = 0.5,
    bins: int = DEFAULT_LINE_BINS,
) -> LineFlow:
    """Flow across ``line`` from a density map and the optical flow of the same interval.

    Args:
        density: people per pixel (H, W), the estimator's density map (sum = count).
        flow: raw optical flow (H, W, 2) in pixels over the interval (see :class:`DenseFlow`);
            it is turned into the crowd's velocity with :func:`crowd_flow` around the line.
        line: the counting line.
        calibration: the camera's ground calibration (for the line's length in metres).
        dt_s: the interval the flow spans, in seconds (1 / real frame rate).
        sigma_px: neighbourhood over which moving pixels' flow is averaged.
        bins: how many equal stretches of the line the ``profile`` has.

    Returns:
        people per second and per metre per minute each way.
    """
    if density.shape != flow.shape[:2] or flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(
            f"density {density.shape} and flow {flow.shape} must be (H, W) and (H, W, 2)"
        )
    if not dt_s > 0:
        raise ValueError(f"dt_s must be positive, got {dt_s}")
    density_crop, velocity_crop, origin = _crop_around_line(
        density,
        flow,
        line,
        margin=int(np.ceil(4 * sigma_px)) + 2,
        sigma_px=sigma_px,
        min_motion_px=min_motion_px,
    )
    samples = max(2, int(np.ceil(line.length_px / step_px)) + 1)
    t = np.linspace(0.0, 1.0, samples)
    start, end = np.asarray(line.start, np.float64), np.asarray(line.end, np.float64)
    points = start + t[:, None] * (end - start) - origin
    map_x = points[:, 0].astype(np.float32).reshape(1, -1)
    map_y = points[:, 1].astype(np.float32).reshape(1, -1)
    rho = _sample(density_crop, map_x, map_y)
    vx = _sample(velocity_crop[..., 0], map_x, map_y)
    vy = _sample(velocity_crop[..., 1], map_x, map_y)
    normal = line.unit_normal()
    flux = rho * (vx * normal[0] + vy * normal[1])  # people per pixel of line per frame
    dl = line.length_px / (samples - 1)
    weights = np.full(samples, dl)
    weights[[0, -1]] = dl / 2.0  # trapezoid rule
    positive = float(np.sum(np.clip(flux, 0, None) * weights)) / dt_s
    negative = float(np.sum(np.clip(-flux, 0, None) * weights)) / dt_s
    stretch = np.minimum((t * bins).astype(int), bins - 1)
    profile = np.bincount(stretch, weights=flux * weights, minlength=bins)
    return LineFlow(
        line=line.name,
        length_m=line.ground_length_m(calibration),
        dt_s=float(dt_s),
        positive_per_s=positive,
        negative_per_s=negative,
        profile=profile,
    )


@dataclass
class LineFlowCounter:
    """Crossings of one line from its :class:`LineFlow` stream, jitter cancelled.

    Splitting each frame's flux into its positive and negative parts counts every wobble twice:
    a detector's box that jitters across the line, a blob that flickers, flow noise on someone
    standing on the line. The counter sums the signed flux of each stretch of the line over
    ``window_s`` and splits only the sum: back-and-forth within the window cancels, a person
    who really crosses counts once. (Two people crossing the same stretch in opposite
    directions within one window cancel too: keep the window short, a second or two.)

    Example:
        >>> counter = LineFlowCounter(window_s=1.0)
        >>> # for each frame: counter.update(line_flow(...)); counter.positive, counter.negative
    """

    window_s: float = 1.0
    _closed_positive: float = 0.0
    _closed_negative: float = 0.0
    _open: np.ndarray | None = field(default=None, repr=False)
    _open_s: float = 0.0

    def update(self, flow: LineFlow) -> None:
        """Add one interval's flow."""
        if self._open is None or len(self._open) != len(flow.profile):
            self._open = np.zeros(len(flow.profile))
        self._open += flow.profile
        self._open_s += flow.dt_s
        if self._open_s >= self.window_s - 1e-9:
            self._closed_positive += float(np.clip(self._open, 0, None).sum())
            self._closed_negative += float(np.clip(-self._open, 0, None).sum())
            self._open[:] = 0.0
            self._open_s = 0.0

    @property
    def positive(self) -> float:
        """People that crossed towards the positive side so far."""
        pending = 0.0 if self._open is None else float(np.clip(self._open, 0, None).sum())
        return self._closed_positive + pending

    @property
    def negative(self) -> float:
        """People that crossed towards the negative side so far."""
        pending = 0.0 if self._open is None else float(np.clip(-self._open, 0, None).sum())
        return self._closed_negative + pending


class LineFlowMeter:
    """Flow across a camera's counting lines, frame after frame: the one object a pipeline needs.

    Args:
        lines: the camera's counting lines.
        calibration: its ground calibration (line lengths in metres).
        dt_s: seconds between consecutive frames fed to :meth:`update` (1 / real frame rate).
        motion: ``"density"`` (default): the flux moves with the density maps' own motion
            (:func:`density_flow`), counting only mass the previous map explains
            (:func:`moving_mass`); robust to people hiding each other, best for detectors.
            ``"image"``: the flux moves with the frames' optical flow; for dense crowds, where
            the density map is too smooth to show motion. Needs ``image`` in :meth:`update`.
        window_s: jitter-cancelling window of the crossing counts (see :class:`LineFlowCounter`).
        flow: the optical-flow engine (default :class:`DenseFlow`), run on the reduced crop.
        margin_px: motion is computed on the lines' bounding box grown by this margin.
        work_scale: the crop is reduced by this factor first (its mass kept) and every step
            runs there, the smoothing scales shrunk alike: the flux through a line (people per
            pixel² x pixels per frame x pixels of line) is the same in any pixels, and a
            density map carries nothing finer than its estimator's stride (8 px) anyway.

    Example:
        >>> meter = LineFlowMeter([line], calibration, dt_s=1 / 7)  # doctest: +SKIP
        >>> for frame, estimate in stream:  # doctest: +SKIP
        ...     flows = meter.update(estimate.density, frame.image)
        ...     meter.crossings("gate"), flows["gate"].positive_per_m_min
    """

    def __init__(
        self,
        lines: Sequence[CountingLine],
        calibration: GroundCalibration,
        dt_s: float,
        motion: MotionSource = "density",
        window_s: float = 1.0,
        flow: DenseFlow | None = None,
        margin_px: int = 64,
        work_scale: float = 1.0,
    ) -> None:
        if not lines:
            raise ValueError("a line flow meter needs at least one counting line")
        if motion not in ("density", "image"):
            raise ValueError(f"motion must be 'density' or 'image', got {motion!r}")
        if not dt_s > 0:
            raise ValueError(f"dt_s must be positive, got {dt_s}")
        names = [line.name for line in lines]
        if len(set(names)) != len(names):
            raise ValueError(f"counting line names must be distinct: {names}")
        self.lines = list(lines)
        self.calibration = calibration
        self.dt_s = float(dt_s)
        self.motion: MotionSource = motion
        self.flow = flow or DenseFlow()
        self.margin_px = int(margin_px)
        if not 0 < work_scale <= 1:
            raise ValueError(f"work_scale must be in (0, 1], got {work_scale}")
        self.work_scale = float(work_scale)
        self.counters = {line.name: LineFlowCounter(window_s) for line in self.lines}
        self._previous_density: np.ndarray | None = None
        self._previous_image: np.ndarray | None = None

    def update(self, density: np.ndarray, image: np.ndarray | None = None) -> dict[str, LineFlow]:
        """Add one frame; the flow of each line since the previous frame (empty for the first)."""
        if self.motion == "image" and image is None:
            raise ValueError("image motion needs the frame: update(density, image)")
        if self.motion == "density":
            image = None  # the density maps' own motion needs no pixels of the frame
        # Motion is only needed around the lines: work on that crop (a fraction of the frame).
        x0, y0, x1, y1 = self._crop_box(density.shape)
        density, image = self._reduced_crop(density, image, (x0, y0, x1, y1))
        scale = density.shape[1] / (x1 - x0), density.shape[0] / (y1 - y0)
        previous_density, previous_image = self._previous_density, self._previous_image
        self._previous_density, self._previous_image = density, image
        if previous_density is None or previous_density.shape != density.shape:
            return {}
        shrink = float(np.mean(scale))  # smoothing and steps, in reduced pixels
        if self.motion == "density":
            motion = density_flow(previous_density, density, self.flow)
            mass = moving_mass(previous_density, density, motion, sigma_px=3.0 * shrink)
        else:
            if previous_image is None or image is None or previous_image.shape != image.shape:
                return {}
            motion = self.flow(previous_image, image)
            mass = density
        # Reduced crop pixel (u, v) is full-frame pixel (x0 + u / sx, y0 + v / sy).
        calibration = self.calibration.resampled(
            np.array([[1.0 / scale[0], 0.0, x0], [0.0, 1.0 / scale[1], y0], [0.0, 0.0, 1.0]])
        )
        results = {}
        for line in self.lines:
            local = CountingLine(
                line.name,
                ((line.start[0] - x0) * scale[0], (line.start[1] - y0) * scale[1]),
                ((line.end[0] - x0) * scale[0], (line.end[1] - y0) * scale[1]),
                line.positive,
            )
            result = line_flow(
                mass,
                motion,
                local,
                calibration,
                self.dt_s,
                sigma_px=6.0 * shrink,
                min_motion_px=DEFAULT_MIN_MOTION_PX * shrink,
                step_px=0.5 * shrink,
            )
            self.counters[line.name].update(result)
            results[line.name] = result
        return results

    def _reduced_crop(
        self, density: np.ndarray, image: np.ndarray | None, box: tuple[int, int, int, int]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The density (mass kept) and frame cropped to ``box`` and reduced by ``work_scale``."""
        x0, y0, x1, y1 = box
        density, image = density[y0:y1, x0:x1], None if image is None else image[y0:y1, x0:x1]
        if self.work_scale == 1.0:
            return density, image
        width = max(1, round((x1 - x0) * self.work_scale))
        height = max(1, round((y1 - y0) * self.work_scale))
        if image is not None:
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        return reduce_mass(density, width=width, height=height), image

    def _crop_box(self, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        height, width = shape[:2]
        xs = [x for line in self.lines for x in (line.start[0], line.end[0])]
        ys = [y for line in self.lines for y in (line.start[1], line.end[1])]
        x0 = max(0, int(np.floor(min(xs))) - self.margin_px)
        y0 = max(0, int(np.floor(min(ys))) - self.margin_px)
        x1 = min(width, int(np.ceil(max(xs))) + self.margin_px + 1)
        y1 = min(height, int(np.ceil(max(ys))) + self.margin_px + 1)
        if x0 >= x1 or y0 >= y1:
            raise ValueError(f"the counting lines lie outside the {width}x{height} frame")
        return x0, y0, x1, y1

    def crossings(self, name: str) -> tuple[float, float]:
        """(positive, negative) people that crossed line ``name`` so far."""
        counter = self.counters[name]
        return counter.positive, counter.negative

    def reset(self) -> None:
        """Forget the previous frame (after a cut); the counts stay."""
        self._previous_density = self._previous_image = None


def crossings_between(
    previous_points: np.ndarray, current_points: np.ndarray, line: CountingLine
) -> tuple[int, int]:
    """(positive, negative) crossings of points that moved from ``previous`` to ``current``.

    Row i of both arrays is the same tracked person. A crossing needs the step to cut the line
    segment itself, not its extension.
    """
    before = np.asarray(previous_points, np.float64).reshape(-1, 2)
    after = np.asarray(current_points, np.float64).reshape(-1, 2)
    if before.shape != after.shape:
        raise ValueError(f"point arrays differ in shape: {before.shape} and {after.shape}")
    # A point exactly on the line counts as the negative side, so touching it and moving on
    # counts once, not twice.
    was_positive, is_positive = line.side_of(before) > 0, line.side_of(after) > 0
    cuts = (was_positive != is_positive) & _step_meets_segment(before, after, line)
    positive = int(np.sum(cuts & is_positive))
    negative = int(np.sum(cuts & was_positive))
    return positive, negative


@dataclass
class LineCrossingCounter:
    """Counts tracked people crossing a line, frame after frame (the sparse-scene check).

    Feed it each frame's track ids and points (for example ``Estimate.track_ids`` and
    ``Estimate.points``, or feet points); a person seen on one side and later on the other counts
    once per crossing, even when some frames were missed in between.
    """

    line: CountingLine
    positive: int = 0
    negative: int = 0
    _last: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def update(self, track_ids: Sequence[int] | np.ndarray, points: np.ndarray) -> tuple[int, int]:
        """Add one frame; returns the (positive, negative) crossings it completed."""
        ids = [int(i) for i in np.asarray(track_ids).reshape(-1)]
        current = np.asarray(points, np.float64).reshape(-1, 2)
        if len(ids) != len(current):
            raise ValueError(f"{len(ids)} track ids for {len(current)} points")
        seen = [i for i in ids if i in self._last]
        step_positive = step_negative = 0
        if seen:
            index = {track: row for row, track in enumerate(ids)}
            before = np.array([self._last[i] for i in seen])
            after = np.array([current[index[i]] for i in seen])
            step_positive, step_negative = crossings_between(before, after, self.line)
        for track, point in zip(ids, current, strict=True):
            self._last[track] = point
        self.positive += step_positive
        self.negative += step_negative
        return step_positive, step_negative


def _step_meets_segment(before: np.ndarray, after: np.ndarray, line: CountingLine) -> np.ndarray:
    """Whether each step's path meets the line segment (between its end points)."""
    start = np.asarray(line.start, np.float64)
    direction = np.asarray(line.end, np.float64) - start
    step = after - before
    offset = before - start
    # before + t * step = start + s * direction  =>  s = (offset x step) / (direction x step)
    denominator = direction[0] * step[:, 1] - direction[1] * step[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        along_line = (offset[:, 0] * step[:, 1] - offset[:, 1] * step[:, 0]) / denominator
    return (denominator != 0) & (along_line >= 0) & (along_line <= 1)


def _crop_around_line(
    density: np.ndarray,
    flow: np.ndarray,
    line: CountingLine,
    margin: int,
    sigma_px: float,
    min_motion_px: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    height, width = density.shape
    xs = (line.start[0], line.end[0])
    ys = (line.start[1], line.end[1])
    x0 = max(0, int(np.floor(min(xs))) - margin)
    x1 = min(width, int(np.ceil(max(xs))) + margin + 1)
    y0 = max(0, int(np.floor(min(ys))) - margin)
    y1 = min(height, int(np.ceil(max(ys))) + margin + 1)
    if x0 >= x1 or y0 >= y1:
        raise ValueError(f"line {line.name!r} lies outside the {width}x{height} frame")
    velocity = crowd_flow(flow[y0:y1, x0:x1], sigma_px, min_motion_px)
    return (
        density[y0:y1, x0:x1].astype(np.float32),
        velocity,
        np.array([x0, y0], dtype=np.float64),
    )


def _sample(values: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    sampled = cv2.remap(
        values.astype(np.float32),
        map_x,
        map_y,
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return sampled.reshape(-1).astype(np.float64)
