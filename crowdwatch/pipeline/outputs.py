"""Everything a run keeps of each analysed frame, built once from the event config.

:class:`RunOutputs` turns a :class:`~crowdwatch.types.FrameResult` into metrics rows (CSV
files and/or the store), alert events for every sink (the JSONL log, the store, webhooks), alert
snapshots, the annotated video, the recording with its live preview, and the bird's-eye view.
:func:`build_run_outputs` is the one factory: ``crowdwatch analyze``, the live engine's camera
workers and the Ray camera hosts all call it, so a setting in the YAML (``webhooks``,
``privacy``, ``recording``) means the same thing in all three and is decided here.

Privacy: with ``privacy.blur_people`` every picture a run keeps (annotated video, snapshots,
recording, live preview) is made from one copy of the frame with its people pixelated; the
analysis itself always sees the real frame.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from crowdwatch.alerts import (
    AlertEvent,
    AlertRecord,
    AlertSink,
    FanoutSink,
    JsonlAlertLog,
    WebhookSink,
)
from crowdwatch.config.schema import CameraConfig, EventConfig
from crowdwatch.outputs import LINE_COLUMNS, AnnotatedVideoWriter, RecordsCsvWriter, save_snapshot
from crowdwatch.pipeline.birdseye import BirdsEyeAccumulator
from crowdwatch.recording.privacy import blur_people
from crowdwatch.recording.recorder import CameraRecorder, RecordingOptions
from crowdwatch.store.records import StoredAlert
from crowdwatch.store.sinks import StoreAlertSink, StoreMetricsWriter, WallClock
from crowdwatch.store.spool import StoreSpool
from crowdwatch.store.sql import SqlStore
from crowdwatch.types import FrameResult, LineMetrics, MetricsRecord, ZoneMetrics
from crowdwatch.venue import alert_to_cap

log = logging.getLogger(__name__)

Annotator = Callable[[FrameResult], np.ndarray]

# Names of the files and folders a run folder holds (see :func:`build_run_outputs`).
METRICS_FILE = "metrics.csv"
LINES_FILE = "lines.csv"
ALERTS_FILE = "alerts.jsonl"
VIDEO_FILE = "annotated.mp4"
BIRDSEYE_FILE = "birdseye.png"
SNAPSHOTS_FOLDER = "snapshots"
# A live camera's alert log and snapshots sit in its recording folder.
CAMERA_SNAPSHOTS_FOLDER = "alerts"
# Metrics and alerts the store could not take (read-only, full, unreachable), until it is back.
SPOOL_FILE = "store-spool.jsonl"
SPOOL_FOLDER = "crowdwatch-spool"  # beside a SQLite store, for cameras with no folder of their own
# Alert log lines: when an alert opens, closes and is acknowledged, so a crash loses none.
LOGGED_EVENTS = ("opened", "closed", "acknowledged")


class MetricsWriter(Protocol):
    """Takes one frame's metrics records."""

    def write(self, records: Sequence[MetricsRecord]) -> object: ...

    def close(self) -> None: ...


class CsvMetrics:
    """``metrics.csv`` (a row per zone per frame) and, with counting lines, ``lines.csv``."""

    def __init__(self, folder: Path, *, with_lines: bool) -> None:
        self.zones = RecordsCsvWriter(folder / METRICS_FILE)
        self.lines = RecordsCsvWriter(folder / LINES_FILE, LINE_COLUMNS) if with_lines else None

    def write(self, records: Sequence[MetricsRecord]) -> None:
        """Write the frame's zone rows and line rows."""
        self.zones.write([r for r in records if isinstance(r, ZoneMetrics)])
        if self.lines is not None:
            self.lines.write([r for r in records if isinstance(r, LineMetrics)])

    def close(self) -> None:
        """Close both files."""
        self.zones.close()
        if self.lines is not None:
            self.lines.close()


class RunOutputs:
    """Keeps each analysed frame: metrics, alert events with their snapshots, pictures.

    Per frame, in this order: metrics rows to every writer; the kept picture (people pixelated
    when privacy asks) annotated once if the video or a new alert's snapshot needs it; a
    snapshot for each alert that opened; every alert event to every sink, each carrying its
    alert's snapshot path; the frame to the recorder (and live preview); the ground density to
    the bird's-eye view.

    Args:
        annotate: draws a result's heat map, zones, lines and people on its frame.
        clock: stream seconds -> wall time (recordings are indexed by wall time).
        metrics: where metrics rows go.
        alerts: where alert events go (a fan-out of sinks).
        snapshots: folder of alert snapshots (None: none are taken); ``snapshot_base``: the
            folder their paths are written relative to.
        video: the annotated video (None: not written).
        recorder: the recording (None: not recorded).
        birdseye: the bird's-eye accumulator (None: not kept).
        privacy_blur: pixelate people in every picture kept.
        recording_problem: why recording could not start (the run goes on without it).
        spool: where store writes wait while the store is unavailable.
    """

    def __init__(
        self,
        *,
        annotate: Annotator,
        clock: WallClock,
        metrics: Sequence[MetricsWriter],
        alerts: AlertSink,
        snapshots: Path | None = None,
        snapshot_base: Path | None = None,
        video: AnnotatedVideoWriter | None = None,
        recorder: CameraRecorder | None = None,
        birdseye: BirdsEyeAccumulator | None = None,
        privacy_blur: bool = False,
        recording_problem: str | None = None,
        spool: StoreSpool | None = None,
    ) -> None:
        self.annotate = annotate
        self.clock = clock
        self.metrics = list(metrics)
        self.alerts = alerts
        self.snapshots = snapshots
        self.snapshot_base = snapshot_base or snapshots
        self.video = video
        self.recorder = recorder
        self.birdseye = birdseye
        self.privacy_blur = privacy_blur
        self._recording_problem = recording_problem
        self.spool = spool
        self._snapshot_of: dict[str, str] = {}
        self._closed = False
        # Wall times (time.time()) at which the last kept frame's metrics were written and its
        # alert events sent to every sink (0 before the first): what "capture -> metrics /
        # alert committed" ends at, before the recording and the bird's-eye view that follow.
        self.metrics_written_at = 0.0
        self.alerts_sent_at = 0.0

    @property
    def recording_error(self) -> str | None:
        """Why recording stopped, if it did (quota, disk); the analysis goes on."""
        return self.recorder.error if self.recorder is not None else self._recording_problem

    @property
    def store_error(self) -> str | None:
        """Why metrics and alerts are being spooled instead of stored, while they are."""
        return self.spool.problem if self.spool is not None else None

    def keep(self, result: FrameResult) -> list[AlertEvent]:
        """Keep one analysed frame; returns its alert events as emitted (with snapshots)."""
        for writer in self.metrics:
            writer.write(result.records)
        self.metrics_written_at = time.time()
        opened = any(event.kind == "opened" for event in result.events)
        wants_annotated = self.video is not None or (opened and self.snapshots is not None)
        shown = self._shown(result) if wants_annotated or self.recorder is not None else None
        annotated = self.annotate(shown) if wants_annotated else None
        if self.video is not None:
            self.video.write(annotated)
        events = self.emit(result.events, annotated)
        self.alerts_sent_at = time.time()
        if self.recorder is not None:
            self.recorder.add(
                shown.frame.image,
                self.clock.wall(result.frame.time_s),
                result.heat,
                density=result.estimate.density,
            )
        if self.birdseye is not None and result.ground_m2 is not None:
            self.birdseye.add(result.ground_m2, result.cell_m)
        return events

    def emit(
        self, events: Sequence[AlertEvent], annotated: np.ndarray | None = None
    ) -> list[AlertEvent]:
        """Send alert events to every sink; an opened alert gets a snapshot of ``annotated``."""
        sent = []
        for event in events:
            if event.kind == "opened" and annotated is not None:
                self._save_snapshot(event.record.id, annotated)
            snapshot = self._snapshot_of.get(event.record.id)
            if snapshot is not None and event.record.snapshot != snapshot:
                record = dataclasses.replace(event.record, snapshot=snapshot)
                event = dataclasses.replace(event, record=record)
            self.alerts.emit(event)
            sent.append(event)
        return sent

    def close(self, extra: Sequence[Callable[[], None]] = ()) -> None:
        """Close every output (and ``extra`` closers), logging a failure and going on: each
        output holds recorded data of its own."""
        if self._closed:
            return
        self._closed = True
        closers: list[Callable[[], None]] = [self.alerts.close]
        closers += [writer.close for writer in self.metrics]
        if self.video is not None:
            closers.append(self.video.close)
        if self.recorder is not None:
            closers.append(self.recorder.close)
        closers += list(extra)
        for close in closers:
            try:
                close()
            except Exception:
                log.exception("error while closing an output of the run")

    def birdseye_image(self) -> np.ndarray | None:
        """The bird's-eye view of the run so far (None without calibrated frames)."""
        return self.birdseye.image() if self.birdseye is not None else None

    def _shown(self, result: FrameResult) -> FrameResult:
        """The result whose frame may be kept: people pixelated when privacy asks for it."""
        if not self.privacy_blur:
            return result
        return result.with_image(blur_people(result.frame.image, result.estimate))

    def _save_snapshot(self, alert_id: str, annotated: np.ndarray) -> None:
        try:
            path = save_snapshot(self.snapshots, alert_id, annotated)
        except (OSError, cv2.error) as error:
            log.warning("cannot save the snapshot of alert %s: %s", alert_id, error)
            return
        self._snapshot_of[alert_id] = path.relative_to(self.snapshot_base).as_posix()


def recording_options(config: EventConfig, root: Path, *, fps: float) -> RecordingOptions:
    """The event's ``recording`` settings, recording at ``fps`` into ``root``."""
    settings = config.recording
    return RecordingOptions(
        root=root,
        segment_s=settings.segment_s,
        fps=fps,
        snapshot_every_s=settings.snapshot_every_s,
        quota_bytes=int(settings.quota_gb * 1024**3),
        on_full=settings.on_full,
        max_width=settings.max_width,
        preview_every_s=settings.preview_every_s,
    )


def alert_sinks(
    config: EventConfig,
    *,
    folder: Path | None,
    store: SqlStore | None,
    clock: WallClock,
    run_id: str | None,
    spool: StoreSpool | None = None,
    camera: str | None = None,
) -> FanoutSink:
    """Every place a run's alert events go: ``folder/alerts.jsonl`` (with a folder), the store
    (times through ``clock``, tagged ``run_id``; into ``spool`` while the store is unavailable)
    and each of the config's ``webhooks`` (JSON, or CAP 1.2 with ``format: cap``), through the
    store's outbox when there is a store (a restart or crash loses no delivery of ``camera``)."""
    sinks: list[AlertSink] = []
    if folder is not None:
        sinks.append(JsonlAlertLog(folder / ALERTS_FILE, kinds=LOGGED_EVENTS))
    if store is not None:
        sinks.append(
            StoreAlertSink(store, clock, snapshot_folder=folder, run_id=run_id, spool=spool)
        )
    for hook in config.webhooks:
        cap = hook.format == "cap"
        sinks.append(
            WebhookSink(
                hook.url,
                timeout_s=hook.timeout_s,
                retries=hook.retries,
                formatter=cap_formatter(config, clock) if cap else None,
                content_type="application/cap+xml" if cap else "application/json",
                outbox=store,
                camera=camera,
            )
        )
    return FanoutSink(sinks)


def cap_formatter(config: EventConfig | None, clock: WallClock) -> Callable[[AlertEvent], bytes]:
    """Alert event -> CAP 1.2 message: sent at the event's wall time; a venue zone's alert
    carries the zone's polygon (in WGS84 when the venue has a geographic anchor). Without a
    config the messages name no event and carry no polygon."""
    venue = config.venue if config is not None else None
    start = datetime.fromtimestamp(clock.offset, timezone.utc)
    sender = f"crowdwatch@{config.name}" if config is not None else "crowdwatch"

    def to_cap(event: AlertEvent) -> bytes:
        polygon = anchor = None
        if venue is not None and event.record.camera == venue.name:
            zone = next((z for z in venue.zones if z.name == event.record.zone), None)
            polygon, anchor = (zone.polygon_m if zone else None), venue.anchor
        text = alert_to_cap(
            event, sender=sender, stream_start=start, polygon_m=polygon, anchor=anchor
        )
        return text.encode("utf-8")

    return to_cap


def spool_path(camera: str, store: SqlStore, folder: Path | None) -> Path:
    """Where a camera's store writes wait while the store is unavailable: the run folder or
    the camera's recording folder, else a ``crowdwatch-spool`` folder beside a SQLite store
    (or in the working folder for PostgreSQL). One engine per store (the store's lease) and one
    camera per file, so nobody else writes it; a later run of the camera writes what is left."""
    if folder is not None:
        return folder / SPOOL_FILE
    base = Path(store.folder) if store.folder is not None else Path.cwd()
    return base / SPOOL_FOLDER / f"{camera}.jsonl"


def build_run_outputs(
    config: EventConfig,
    camera: CameraConfig,
    *,
    annotate: Annotator,
    clock: WallClock,
    folder: Path | None = None,
    store: SqlStore | None = None,
    recording: RecordingOptions | None = None,
    video_fps: float | None = None,
    run_id: str | None = None,
) -> RunOutputs:
    """What a run of ``camera`` keeps, from the event config.

    With ``folder`` (``crowdwatch analyze``'s run folder): ``metrics.csv``, ``lines.csv``,
    ``alerts.jsonl``, ``snapshots/``, ``birdseye.png`` and, with ``video_fps``,
    ``annotated.mp4``. Without one, a recorded camera keeps its alert log and snapshots in its
    recording folder (``<root>/<camera>/alerts.jsonl``, ``.../alerts/``). With ``store``:
    metrics and alerts go to the store too (times through ``clock``, tagged with ``run_id``:
    see :meth:`SqlStore.start_run`); with ``recording``: the
    frames and heat maps are recorded (indexed in ``store``). Every run POSTs alert events to
    the config's ``webhooks`` and follows its ``privacy`` section.
    """
    if recording is not None and store is None:
        raise ValueError("recording needs a store to index it: give store as well as recording")
    camera_folder = Path(recording.root) / camera.name if recording is not None else None
    base = folder or camera_folder
    snapshots = None
    if folder is not None:
        snapshots = folder / SNAPSHOTS_FOLDER
    elif camera_folder is not None:
        snapshots = camera_folder / CAMERA_SNAPSHOTS_FOLDER
    metrics: list[MetricsWriter] = []
    spool = None
    if folder is not None:
        metrics.append(CsvMetrics(folder, with_lines=bool(camera.lines)))
    if store is not None:
        spool = StoreSpool(spool_path(camera.name, store, base))
        metrics.append(StoreMetricsWriter(store, clock, run_id=run_id, spool=spool))
    alerts = alert_sinks(
        config,
        folder=base,
        store=store,
        clock=clock,
        run_id=run_id,
        spool=spool,
        camera=camera.name,
    )
    video = None
    if folder is not None and video_fps is not None:
        video = AnnotatedVideoWriter(folder / VIDEO_FILE, video_fps)
    recorder, recording_problem = None, None
    if recording is not None:
        try:
            recorder = CameraRecorder(camera.name, recording, store)
        except OSError as error:  # the analysis goes on; the camera's health says why
            recording_problem = f"recording disabled: {error}"
            log.error("camera %s: %s", camera.name, recording_problem)
    return RunOutputs(
        annotate=annotate,
        clock=clock,
        metrics=metrics,
        alerts=alerts,
        snapshots=snapshots,
        snapshot_base=base,
        video=video,
        recorder=recorder,
        birdseye=BirdsEyeAccumulator() if folder is not None else None,
        privacy_blur=config.privacy.blur_people,
        recording_problem=recording_problem,
        spool=spool,
    )


def stored_alert_events(alert: StoredAlert) -> list[AlertEvent]:
    """A stored alert's life as events in wall time: opened, acknowledged, closed."""
    record = AlertRecord.from_dict(alert.record)
    record.id, record.snapshot = alert.id, alert.snapshot
    events = [AlertEvent("opened", record, alert.opened)]
    if alert.acknowledged_at is not None:
        events.append(AlertEvent("acknowledged", record, alert.acknowledged_at))
    if alert.closed is not None:
        events.append(AlertEvent("closed", record, alert.closed))
    return events
