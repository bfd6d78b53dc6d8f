"""How the crowd moves and changes: speeds, flow, pressure, trends and line crossings per frame.

Everything here needs time (the previous frame) and, for anything in metres, the calibration.
``CrowdDynamics`` keeps that state for one camera and completes each frame's zone records.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace

import cv2
import numpy as np

from crowdwatch.config.schema import CameraConfig
from crowdwatch.heatmap.density import reduce_mass
from crowdwatch.measures import (
    density_level_of_service,
    flow_level_of_service,
    minutes_at_trend,
    rate_of_rise,
    trend,
)
from crowdwatch.metrics import LineMetrics, ZoneMetrics
from crowdwatch.motion import (
    DenseFlow,
    FlowStream,
    LineFlowMeter,
    crowd_pressure_map,
    crowd_velocity_reduced,
    flow_is_stalled,
    people_weighted_mean,
    zone_mean_speed,
)
from crowdwatch.pipeline.scene import Scene
from crowdwatch.types import Estimate, Frame

#: Trailing window of the rate of rise, the forecast and the stall test.
TREND_WINDOW_S = 60.0
#: Scale, in pixels, over which optical flow is averaged into the crowd's velocity: about a
#: person's width, so that swinging arms and legs do not read as a scatter of velocities.
PERSON_SIGMA_PX = 15.0
#: Crowd pressure's neighbourhood (Gaussian sigma), in full-frame pixels.
PRESSURE_WINDOW_PX = 15.0
#: Optical flow, the crowd's velocity and pressure are computed on frames reduced by this
#: factor: people are tens of pixels wide and their velocity is smoothed over ``PERSON_SIGMA_PX``,
#: so a quarter-size field keeps what matters at a sixteenth of the work.
MOTION_SCALE = 0.25
#: Optical flow itself is computed at this fraction of the frame's size, then averaged down to
#: ``MOTION_SCALE``: DIS on a quarter-size frame misses part of small walkers' motion.
FLOW_SCALE = 0.5
#: DIS preset of that flow (see :class:`crowdwatch.motion.DenseFlow`).
FLOW_PRESET = "ultrafast"
#: DIS refines down to this pyramid level of the ``FLOW_SCALE`` frame (1: half of it, so the
#: patches are a quarter-size frame's, the motion field's own resolution). On the whole PETS
#: clip the people-weighted zone speed is 0.940 m/s against the tracks' 0.966 (level 0: 1.130,
#: 17 % high from limbs swinging) at a third of the flow's cost (``benchmarks/pets_safety.py``).
FLOW_FINEST_SCALE = 1
#: Pixels between DIS's patches (the preset's 4): a fifth fewer patches, 4.4 -> 3.4 ms a frame,
#: and on the whole PETS clip the region's walking speed reads 0.962 m/s against the tracks'
#: 0.966 (stride 4: 0.940; per-frame MAE 0.380 -> 0.377 m/s). Stride 6 read 0.997 (MAE 0.388)
#: and 8 read 1.078 (0.408): coarser patches start to merge neighbours' motion.
FLOW_PATCH_STRIDE = 5
#: The line meter reduces its crop around the lines by this factor before measuring motion.
LINE_WORK_SCALE = 0.5
#: ... and refines the density maps' flow to that half-size crop's own pixels: the density
#: blobs' motion needs it (whole PETS clip, crossings in / out against the truth's 7 / 13: SSD
#: 6.5 / 8.6, density model 9.0 / 11.9; at level 1: 5.3 / 8.2 and 8.9 / 11.8; before, at full
#: size: 5.8 / 8.9 and 8.8 / 11.8).
LINE_FLOW_FINEST_SCALE = 0
#: Full-frame pixels of context around the lines' box that the line meter's motion sees (its
#: default 64): a 0.77 of the crop, and on the whole PETS clip the crossings read 7.4 / 12.7
#: with the density model (64: 8.2 / 12.0; truth 7 / 13) and 6.6 / 8.6 with SSD (64: 6.5 / 8.6).
LINE_MARGIN_PX = 48


class _ZoneHistory:
    """A zone's recent samples, for its trends."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.times: deque[float] = deque()
        self.values: deque[float] = deque()
        self.flows: deque[float] = deque()

    def add(self, time_s: float, value: float, flow: float) -> None:
        self.times.append(time_s)
        self.values.append(value)
        self.flows.append(flow)
        while self.times and self.times[0] < time_s - 2 * self.window_s:
            self.times.popleft()
            self.values.popleft()
            self.flows.popleft()


class CrowdDynamics:
    """Per-camera motion and trend state; completes zone records and makes line records.

    Example:
        >>> dynamics = CrowdDynamics(scene, camera_config)  # doctest: +SKIP
        >>> zones, lines = dynamics.update(frame, estimate, zone_records)  # doctest: +SKIP
    """

    def __init__(
        self,
        scene: Scene,
        camera: CameraConfig,
        window_s: float = TREND_WINDOW_S,
        motion_scale: float = MOTION_SCALE,
        flow_scale: float = FLOW_SCALE,
        flow_preset: str = FLOW_PRESET,
        flow_finest_scale: int = FLOW_FINEST_SCALE,
    ):
        self.scene = scene
        self.camera = camera.name
        self.window_s = window_s
        self.limits = {zone.name: zone.limit_density for zone in camera.zones}
        calibrated = scene.people_plane is not None
        self.motion_scale = float(motion_scale)
        self.flow_scale = max(float(flow_scale), self.motion_scale)
        self.flows = (
            FlowStream(
                DenseFlow(
                    scale=self.flow_scale,
                    preset=flow_preset,
                    finest_scale=flow_finest_scale,
                    patch_stride=FLOW_PATCH_STRIDE,
                )
            )
            if calibrated
            else None
        )
        self.meter = (
            LineFlowMeter(
                scene.lines,
                scene.people_plane,
                dt_s=1.0,
                motion=camera.line_motion,
                # The meter works on its crop at half size (LINE_WORK_SCALE); its flow runs on
                # that, refined to the crop's own pixels (LINE_FLOW_FINEST_SCALE).
                flow=DenseFlow(scale=1.0, preset=flow_preset, finest_scale=LINE_FLOW_FINEST_SCALE),
                work_scale=LINE_WORK_SCALE,
                margin_px=LINE_MARGIN_PX,
            )
            if calibrated and scene.lines
            else None
        )
        self._zones = {zone.name: zone for zone in scene.zones}
        self.histories = {zone.name: _ZoneHistory(window_s) for zone in scene.zones}
        self._last_time_s: float | None = None

    def update(
        self,
        frame: Frame,
        estimate: Estimate,
        zones: list[ZoneMetrics],
        ground_m2: np.ndarray | None = None,
    ) -> tuple[list[ZoneMetrics], list[LineMetrics]]:
        """Zone records with speed, flow, pressure and trends added; one record per line.

        ``ground_m2`` is the frame's people per m² on the ground grid (calibrated cameras), which
        crowd pressure reads at the motion field's pixels.
        """
        dt = None if self._last_time_s is None else frame.time_s - self._last_time_s
        self._last_time_s = frame.time_s
        if dt is not None and dt <= 0:
            dt = None  # a repeated timestamp: no motion can be measured
        # Motion is measured on the reduced field the flow is computed on; so are the people
        # weights and the people per m² that speeds and pressure need.
        velocity = self._velocity(frame, dt)
        people = pressure = None
        if velocity is not None:
            people = reduce_mass(
                estimate.density, width=velocity.shape[1], height=velocity.shape[0]
            )
            if ground_m2 is not None and self.scene.mapper is not None:
                pressure = crowd_pressure_map(
                    self.scene.mapper.grid_at(ground_m2, velocity.shape[:2]),
                    velocity,
                    people,
                    PRESSURE_WINDOW_PX * velocity.shape[1] / frame.image.shape[1],
                )
        completed = [self._complete(record, estimate, velocity, people, pressure)
                     for record in zones]  # fmt: skip
        return completed, self._lines(frame, estimate, dt)

    def _velocity(self, frame: Frame, dt: float | None) -> np.ndarray | None:
        """The crowd's ground velocity (h, w, 2) in m/s on the reduced field."""
        if self.flows is None:
            return None
        flow = self.flows.update_reduced(frame.image)
        if flow is None or dt is None:
            return None
        height, width = frame.image.shape[:2]
        if self.motion_scale < self.flow_scale:
            size = (max(1, round(width * self.motion_scale)),
                    max(1, round(height * self.motion_scale)))  # fmt: skip
            ratio = np.array([size[0] / flow.shape[1], size[1] / flow.shape[0]], np.float32)
            flow = cv2.resize(flow, size, interpolation=cv2.INTER_AREA) * ratio
        return crowd_velocity_reduced(
            flow, self.scene.people_plane, dt, (width, height), sigma_px=PERSON_SIGMA_PX
        )

    def _complete(
        self,
        record: ZoneMetrics,
        estimate: Estimate,
        velocity: np.ndarray | None,
        people: np.ndarray | None,
        pressure_map: np.ndarray | None,
    ) -> ZoneMetrics:
        zone = self._zones[record.zone]
        speed = pressure = flow_rate = None
        if velocity is not None and pressure_map is not None and record.density is not None:
            coverage = zone.coverage(velocity.shape[:2], estimate.density.shape)
            speed = zone_mean_speed(velocity, people, coverage)
            pressure = people_weighted_mean(pressure_map, people, coverage)
            flow_rate = record.density * speed * 60.0  # fundamental relation J = rho * v
        history = self.histories[record.zone]
        value = record.density if record.density is not None else record.count
        history.add(record.time_s, value, np.nan if flow_rate is None else flow_rate)
        # One fit of the value's trend serves the rise, the forecast and the stall test.
        fitted = trend(history.times, history.values, self.window_s)
        minutes = None
        stalled = False
        if record.density is not None:
            minutes = minutes_at_trend(fitted, self.limits.get(record.zone, 4.0))
            if flow_rate is not None:
                stalled = flow_is_stalled(
                    density_m2=history.values[-1],
                    density_rise_per_min=None if fitted is None else fitted[0],
                    flow_change_per_min=rate_of_rise(history.times, history.flows, self.window_s),
                )
        return replace(
            record,
            level_of_service=None
            if record.density is None
            else density_level_of_service(record.density),
            mean_speed=speed,
            flow_rate=flow_rate,
            pressure=pressure,
            rise_rate=None if fitted is None else fitted[0],
            minutes_to_limit=minutes,
            stalled=bool(stalled),
        )

    def _lines(self, frame: Frame, estimate: Estimate, dt: float | None) -> list[LineMetrics]:
        if self.meter is None:
            return []
        if dt is None:
            # First frame (or a repeated timestamp): start over from this frame.
            self.meter.reset()
            self.meter.update(estimate.density, frame.image)
            return []
        self.meter.dt_s = dt
        flows = self.meter.update(estimate.density, frame.image)
        records = []
        for name, flow in flows.items():
            crossed_in, crossed_out = self.meter.crossings(name)
            total = flow.total_per_m_min
            records.append(
                LineMetrics(
                    camera=self.camera,
                    line=name,
                    frame_index=frame.index,
                    time_s=frame.time_s,
                    length_m=flow.length_m,
                    flow_in=flow.positive_per_m_min,
                    flow_out=flow.negative_per_m_min,
                    flow_rate=total,
                    crossed_in=crossed_in,
                    crossed_out=crossed_out,
                    level_of_service=flow_level_of_service(total),
                )
            )
        return records
