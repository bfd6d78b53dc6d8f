"""How the crowd moves and changes: speeds, flow, pressure, trends and line crossings per frame.

Everything here needs time (the previous frame) and, for anything in metres, the calibration.
``CrowdDynamics`` keeps that state for one camera and completes each frame's zone records.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace

import numpy as np

from crowdwatch.config.schema import CameraConfig
from crowdwatch.measures import (
    density_level_of_service,
    flow_level_of_service,
    minutes_to_threshold,
    rate_of_rise,
)
from crowdwatch.metrics import LineMetrics, ZoneMetrics
from crowdwatch.motion import (
    FlowStream,
    LineFlowMeter,
    crowd_pressure_map,
    crowd_velocity,
    detect_stalled_flow,
    zone_mean_speed,
)
from crowdwatch.pipeline.scene import Scene
from crowdwatch.types import Estimate, Frame

#: Trailing window of the rate of rise, the forecast and the stall test.
TREND_WINDOW_S = 60.0
#: Scale, in pixels, over which optical flow is averaged into the crowd's velocity: about a
#: person's width, so that swinging arms and legs do not read as a scatter of velocities.
PERSON_SIGMA_PX = 15.0


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

    def __init__(self, scene: Scene, camera: CameraConfig, window_s: float = TREND_WINDOW_S):
        self.scene = scene
        self.camera = camera.name
        self.window_s = window_s
        self.limits = {zone.name: zone.limit_density for zone in camera.zones}
        calibrated = scene.people_plane is not None
        self.flows = FlowStream() if calibrated else None
        self.meter = (
            LineFlowMeter(scene.lines, scene.people_plane, dt_s=1.0, motion=camera.line_motion)
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
        density_m2: np.ndarray | None = None,
    ) -> tuple[list[ZoneMetrics], list[LineMetrics]]:
        """Zone records with speed, flow, pressure and trends added; one record per line.

        ``density_m2`` is the frame's people per m² at each pixel (calibrated cameras), which
        crowd pressure needs.
        """
        dt = None if self._last_time_s is None else frame.time_s - self._last_time_s
        self._last_time_s = frame.time_s
        if dt is not None and dt <= 0:
            dt = None  # a repeated timestamp: no motion can be measured
        velocity = self._velocity(frame, dt)
        pressure = None
        if velocity is not None and density_m2 is not None:
            pressure = crowd_pressure_map(density_m2, velocity, estimate.density)
        completed = [self._complete(record, estimate, velocity, pressure) for record in zones]
        return completed, self._lines(frame, estimate, dt)

    def _velocity(self, frame: Frame, dt: float | None) -> np.ndarray | None:
        if self.flows is None:
            return None
        flow = self.flows.update(frame.image)
        if flow is None or dt is None:
            return None
        return crowd_velocity(flow, self.scene.people_plane, dt, sigma_px=PERSON_SIGMA_PX)

    def _complete(
        self,
        record: ZoneMetrics,
        estimate: Estimate,
        velocity: np.ndarray | None,
        pressure_map: np.ndarray | None,
    ) -> ZoneMetrics:
        zone = self._zones[record.zone]
        speed = pressure = flow_rate = None
        if velocity is not None and pressure_map is not None and record.density is not None:
            mask = zone.mask(estimate.density.shape)
            speed = zone_mean_speed(velocity, estimate.density, mask)
            pressure = _people_weighted_mean(pressure_map, estimate.density, mask)
            flow_rate = record.density * speed * 60.0  # fundamental relation J = rho * v
        history = self.histories[record.zone]
        value = record.density if record.density is not None else record.count
        history.add(record.time_s, value, np.nan if flow_rate is None else flow_rate)
        minutes = stalled = None
        if record.density is not None:
            limit = self.limits.get(record.zone, 4.0)
            minutes = minutes_to_threshold(history.times, history.values, limit, self.window_s)
            if flow_rate is not None:
                stalled = detect_stalled_flow(
                    list(history.times), list(history.values), list(history.flows), self.window_s
                ).stalled
        return replace(
            record,
            level_of_service=None
            if record.density is None
            else density_level_of_service(record.density),
            mean_speed=speed,
            flow_rate=flow_rate,
            pressure=pressure,
            rise_rate=rate_of_rise(history.times, history.values, self.window_s),
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


def _people_weighted_mean(values: np.ndarray, people: np.ndarray, mask: np.ndarray) -> float:
    """Mean of a map over a zone's people: what the people in the zone experience.

    Crowd pressure is local (Helbing et al.): averaging the local map over the zone's people,
    rather than taking the velocity variance of the whole zone, keeps people walking in
    different directions far apart from reading as turbulence.
    """
    weights = np.where(mask, np.clip(people, 0, None), 0.0)
    total = float(weights.sum())
    if total <= 0:
        return 0.0
    return float((np.nan_to_num(values) * weights).sum() / total)
