"""The venue's step of the analysis path: every camera's ground grid on one site plan.

:class:`VenueRun` collects each calibrated camera's latest :class:`~crowdwatch.types.FrameResult`
(its people/m² on the ground grid and its counting-line records), and at each :meth:`tick`
fuses them with :class:`~crowdwatch.venue.VenueAnalyzer` and keeps what comes out exactly as a
camera's results are kept: venue zones and gates as metrics rows in the store (camera = the
venue's name, so the console, Review and what-if treat them as zones and lines), their alerts
to every sink of :func:`~crowdwatch.pipeline.outputs.alert_sinks`. The live engine ticks it about
once a second with the cameras' health; ``analyze`` ticks it after every frame.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crowdwatch.calibration import GroundCalibration, GroundGrid
from crowdwatch.config.schema import EventConfig
from crowdwatch.pipeline.outputs import alert_sinks, spool_path
from crowdwatch.pipeline.scene import Scene
from crowdwatch.recording.venue_preview import write_venue_preview
from crowdwatch.store.records import MetricSample
from crowdwatch.store.sinks import WallClock, finite_number, metric_sample
from crowdwatch.store.spool import StoreSpool
from crowdwatch.store.sql import SqlStore
from crowdwatch.types import FrameResult, LineMetrics
from crowdwatch.venue import CameraGround, VenueAnalyzer, VenueResult, VenueZoneRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class VenueInput:
    """What the venue needs of one camera's newest analysed frame: plain data, so a Ray camera
    host can send it to the engine.

    Attributes:
        camera: the camera; plane: its people-plane calibration (venue metres); width, height:
            its frame size; grid, ground_m2: its people/m² on its own ground grid; lines: its
            counting-line records (``camera/line`` -> record); time: the frame's stream time.
    """

    camera: str
    plane: GroundCalibration
    width: int
    height: int
    grid: GroundGrid
    ground_m2: np.ndarray
    lines: tuple[LineMetrics, ...]
    time: float

    @classmethod
    def of(cls, camera: str, result: FrameResult, scene: Scene) -> VenueInput | None:
        """The input of an analysed frame (None for an uncalibrated camera)."""
        if scene.mapper is None or result.ground_m2 is None:
            return None
        return cls(
            camera=camera,
            plane=scene.people_plane,
            width=scene.width,
            height=scene.height,
            grid=scene.mapper.grid,
            ground_m2=result.ground_m2,
            lines=tuple(result.lines),
            time=result.frame.time_s,
        )


class VenueRun:
    """Fuses the cameras of one run onto the venue and keeps the venue's records and alerts.

    Thread-safe: camera workers call :meth:`add` from their threads, one supervisor calls
    :meth:`tick`. A camera that never produced a calibrated frame is not on the plan; the venue
    zones only it would cover are ``unknown``.
    """

    def __init__(
        self,
        config: EventConfig,
        *,
        store: SqlStore | None,
        clock: WallClock,
        run_id: str | None = None,
        folder: Path | None = None,
        preview: Path | None = None,
    ) -> None:
        if config.venue is None:
            raise ValueError("the config has no venue section")
        self.venue = config.venue
        self.store = store
        self.clock = clock
        self.run_id = run_id
        self.preview = preview
        # While the store is unavailable the venue's rows and alerts wait in a spool, as a
        # camera's do.
        self.spool = StoreSpool(spool_path(self.venue.name, store, folder)) if store else None
        self.alerts = alert_sinks(
            config,
            folder=folder,
            store=store,
            clock=clock,
            run_id=run_id,
            spool=self.spool,
            camera=self.venue.name,
        )
        self._analyzer: VenueAnalyzer | None = None
        self._planes: dict[str, tuple] = {}
        self._grids: dict[str, CameraGround] = {}
        self._lines: dict[str, LineMetrics] = {}
        self._ticks = 0
        self._lock = threading.Lock()

    def add(self, camera: str, result: FrameResult, scene: Scene) -> None:
        """Take a camera's newest analysed frame (ignored for uncalibrated cameras)."""
        self.add_input(VenueInput.of(camera, result, scene))

    def add_input(self, data: VenueInput | None) -> None:
        """Take a camera's newest :class:`VenueInput` (from a local worker or a Ray host)."""
        if data is None:
            return
        with self._lock:
            self._planes[data.camera] = (data.plane, data.width, data.height)
            self._grids[data.camera] = CameraGround(data.grid, data.ground_m2)
            self._lines.update({line.target: line for line in data.lines})

    def tick(self, time_s: float, health: Mapping[str, str]) -> VenueResult | None:
        """Fuse, measure, raise alerts and keep the records; None before any camera reported."""
        with self._lock:
            if not self._planes:
                return None
            analyzer = self._analyzer_for(self._planes)
            grids, lines = dict(self._grids), dict(self._lines)
        result = analyzer.update(time_s, grids, lines, health, frame_index=self._ticks)
        self._ticks += 1
        if self.store is not None:
            self.spool.write(self.store, "metrics", self._samples(result))
        for event in result.events:
            self.alerts.emit(event)
        if self.preview is not None:
            self._write_preview(result, analyzer)
        return result

    def close(self, time_s: float) -> None:
        """Close the venue's open alerts and its sinks."""
        if self._analyzer is not None:
            for event in self._analyzer.finish(time_s):
                self.alerts.emit(event)
        self.alerts.close()
        if self.spool is not None and not self.spool.flush(self.store):
            log.warning("venue %s: %d rows wait in %s for the store", self.venue.name,
                        self.spool.pending, self.spool.path)  # fmt: skip

    def _write_preview(self, result: VenueResult, analyzer: VenueAnalyzer) -> None:
        """The console's live picture of the venue: the fused people/m² grid (NaN where no
        live camera sees) and each camera's footprint, overwritten at every tick."""
        grid = result.fused.grid
        info = {
            "time": self.clock.wall(result.time_s),
            "bounds": list(grid.bounds),
            "cell_m": grid.cell_m,
            "live": list(result.fused.cameras),
            "footprints": {
                view.name: [list(map(float, p)) for p in view.footprint.exterior.coords]
                for view in analyzer.views
                if not view.footprint.is_empty and view.footprint.geom_type == "Polygon"
            },
        }
        try:
            write_venue_preview(self.preview, result.fused.per_m2, info)
        except OSError as error:
            log.warning("cannot write the venue preview in %s: %s", self.preview, error)

    def _analyzer_for(self, planes: Mapping[str, tuple]) -> VenueAnalyzer:
        if self._analyzer is None or set(planes) != self._placed:
            # A camera appeared (or first came up): place every camera seen so far.
            self._analyzer = VenueAnalyzer(self.venue, planes, run_id=self.run_id or "")
            self._placed = set(planes)
        return self._analyzer

    def _samples(self, result: VenueResult) -> list[MetricSample]:
        samples = [_zone_sample(zone, self.clock, self.run_id) for zone in result.zones]
        samples += [metric_sample(gate, self.clock, self.run_id) for gate in result.gates]
        return samples


def _zone_sample(zone: VenueZoneRecord, clock: WallClock, run_id: str | None) -> MetricSample:
    """A venue zone as a store sample: the zone's metrics plus covered fraction, known (0/1),
    gate in/out flows (people/min) and the mass-balance minutes to critical."""
    sample = metric_sample(zone.metrics, clock, run_id)
    extras = {
        "covered_fraction": zone.covered_fraction,
        "unknown": 1.0 if zone.status.unknown else 0.0,
        "inflow_per_min": zone.inflow_per_min,
        "outflow_per_min": zone.outflow_per_min,
        "minutes_to_critical": zone.minutes_to_critical,
    }
    values = {**sample.values, **{name: finite_number(v) for name, v in extras.items()}}
    return MetricSample(
        camera=sample.camera,
        zone=sample.zone,
        time=sample.time,
        values=values,
        kind=sample.kind,
        frame_index=sample.frame_index,
        level=sample.level,
        run_id=sample.run_id,
    )
