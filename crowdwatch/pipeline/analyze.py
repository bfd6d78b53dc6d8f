"""``crowdwatch analyze``: run one camera's analysis over a source and write the output files.

Outputs in the run folder: ``annotated.mp4``, ``metrics.csv``, ``lines.csv`` (with counting
lines), ``alerts.jsonl``, ``summary.json``, ``birdseye.png`` (calibrated cameras: mean people per
m² seen from above) and ``snapshots/`` (one JPEG per alert, taken when it opened).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
from tqdm import tqdm

from crowdwatch.alerts import AlertSink, FanoutSink, JsonlAlertLog, WebhookSink
from crowdwatch.config.schema import EventConfig
from crowdwatch.estimators import Estimator, make_estimator
from crowdwatch.outputs import (
    LINE_COLUMNS,
    AnnotatedVideoWriter,
    RecordsCsvWriter,
    RunSummary,
    save_snapshot,
    write_json_atomically,
)
from crowdwatch.pipeline.birdseye import BirdsEyeAccumulator
from crowdwatch.pipeline.camera import CameraAnalyzer, FrameResult
from crowdwatch.recording.recorder import RecordingOptions
from crowdwatch.sources import open_source, sample_frames
from crowdwatch.sources.video import VideoSource
from crowdwatch.store.feed import StoreFeed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalysisOptions:
    """Which frames to analyse and what to write.

    Attributes:
        every: analyse every N-th frame.
        fps: analyse at most this many frames per second of source time.
        max_frames: stop after this many analysed frames (None: the whole source).
        write_video: write ``annotated.mp4``.
        progress: show a progress bar on stderr.
    """

    every: int | None = None
    fps: float | None = None
    max_frames: int | None = None
    write_video: bool = True
    progress: bool = True


def analyze(
    source: str | int | Path | None,
    config: EventConfig,
    out_dir: Path,
    options: AnalysisOptions | None = None,
    camera_name: str | None = None,
    estimator: Estimator | None = None,
    store: str | Path | None = None,
    record: Path | None = None,
) -> RunSummary:
    """Analyse a video, folder, stream or webcam and write the run's files to ``out_dir``.

    ``source`` overrides the camera's configured source. Whatever happens (a read error,
    Ctrl-C), the files hold everything analysed up to that point and ``summary.json`` says whether
    the run completed. With ``store`` (a path or URL, see :func:`crowdwatch.store.open_store`)
    metrics, alerts and camera health also go to that store, video time 0 being the run's start;
    with ``record`` too, the analysed frames and heat maps are recorded there for replay.

    Example:
        >>> from crowdwatch.config import default_config
        >>> summary = analyze("sample_videos/pets2009_s2l1.mp4",
        ...                   default_config("sample_videos/pets2009_s2l1.mp4"),
        ...                   Path("out"), AnalysisOptions(max_frames=20))  # doctest: +SKIP
    """
    options = options or AnalysisOptions()
    camera = config.camera(camera_name)
    if source is not None:
        camera = camera.model_copy(update={"source": source})
    out_dir.mkdir(parents=True, exist_ok=True)
    with open_source(camera.source, file_fps=camera.source_fps) as frames:
        analyzer = CameraAnalyzer(
            camera, estimator or make_estimator(config.estimator), config.heatmap
        )
        if record is not None and store is None:
            raise ValueError("recording needs a store to index it: give store as well as record")
        feed = None
        if store:
            recording = None
            if record is not None:
                fps = _output_fps(frames.fps, options)
                recording = RecordingOptions.from_event(config, record, fps)
            feed = StoreFeed.open(store, config, camera, out_dir, recording)
        sinks = [feed.alerts] if feed else []
        alerts = _alert_sink(config, out_dir, sinks)
        run = _Run(analyzer, frames, out_dir, options, alerts, feed, config.privacy.blur_people)
        return run.execute()


def _alert_sink(config: EventConfig, out_dir: Path, extra: list[AlertSink]) -> AlertSink:
    sinks: list[AlertSink] = [JsonlAlertLog(out_dir / "alerts.jsonl"), *extra]
    sinks += [
        WebhookSink(hook.url, timeout_s=hook.timeout_s, retries=hook.retries)
        for hook in config.webhooks
    ]
    return FanoutSink(sinks)


class _Run:
    """One analysis run: the loop over frames and the files it feeds."""

    def __init__(
        self,
        analyzer: CameraAnalyzer,
        source: VideoSource,
        out_dir: Path,
        options: AnalysisOptions,
        alerts: AlertSink,
        feed: StoreFeed | None = None,
        blur_people: bool = False,
    ) -> None:
        self.analyzer = analyzer
        self.blur_people = blur_people
        self.feed = feed
        self.source = source
        self.out_dir = out_dir
        self.options = options
        self.alerts = alerts
        self.summary = RunSummary(
            source=source.name,
            camera=analyzer.camera.name,
            estimator=analyzer.estimator.name,
            frames_in_source=source.frame_count,
        )
        self.metrics = RecordsCsvWriter(out_dir / "metrics.csv")
        self.lines = (
            RecordsCsvWriter(out_dir / "lines.csv", LINE_COLUMNS) if analyzer.camera.lines else None
        )
        self.birdseye = BirdsEyeAccumulator()
        video_fps = _output_fps(source.fps, options)
        self.video = AnnotatedVideoWriter(out_dir / "annotated.mp4", video_fps)

    def execute(self) -> RunSummary:
        started = time.perf_counter()
        estimator_ms = 0.0
        last_time = 0.0
        try:
            for result in self._results():
                estimator_ms += result.estimator_ms
                last_time = result.frame.time_s
                self._record(result)
            self._emit(self.analyzer.finish(last_time), None)
            self.summary.completed = True
        except KeyboardInterrupt:
            self.summary.error = "interrupted"
            raise
        except Exception as exc:
            self.summary.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self.summary.wall_seconds = time.perf_counter() - started
            frames = max(self.summary.frames_analysed, 1)
            self.summary.estimator_ms_per_frame = estimator_ms / frames
            self._close()
        return self.summary

    def _results(self) -> Iterator[FrameResult]:
        frames = sample_frames(self.source, every=self.options.every, fps=self.options.fps)
        total = _expected_frames(self.source, self.options)
        bar = tqdm(
            total=total,
            unit="frame",
            disable=not self.options.progress,
            leave=False,
            desc="analysing",
        )
        try:
            for analysed, frame in enumerate(frames):
                if self.options.max_frames is not None and analysed >= self.options.max_frames:
                    break
                yield self.analyzer.process(frame)
                bar.update(1)
        finally:
            bar.close()

    def _record(self, result: FrameResult) -> None:
        self.metrics.write(result.zones)
        if self.lines is not None:
            self.lines.write(result.lines)
        if self.feed is not None:
            self.feed.write(result)
        self.summary.add_frame(
            result.frame.time_s, result.estimate.count, result.zones, result.lines
        )
        if result.ground_m2 is not None:
            self.birdseye.add(result.ground_m2, self.analyzer.scene.mapper.grid.cell_m)
        annotated = None
        if self.options.write_video or result.events:
            annotated = self.analyzer.annotate(self._shown(result))
        if self.options.write_video:
            self.video.write(annotated)
        self._emit(result.events, annotated)

    def _shown(self, result: FrameResult) -> FrameResult:
        """The result whose frame may be written: people pixelated when privacy asks for it."""
        return result.with_people_blurred() if self.blur_people else result

    def _emit(self, events, annotated) -> None:
        for event in events:
            if event.kind == "opened":
                self.summary.add_alert(event.record.zone, event.record.level)
                if annotated is not None:
                    path = save_snapshot(self.out_dir / "snapshots", event.record.id, annotated)
                    relative = str(path.relative_to(self.out_dir))
                    self.analyzer.engine.attach_snapshot(event.record.id, relative)
                    event.record.snapshot = relative
            self.alerts.emit(event)

    def _close(self) -> None:
        closers = [self.alerts.close, self.metrics.close, self.video.close, self._write_birdseye]
        if self.lines is not None:
            closers.append(self.lines.close)
        if self.feed is not None:
            closers.append(lambda: self.feed.close(self.summary))
        for close in closers:
            try:
                close()
            except Exception:  # keep closing the others: each file holds recorded data
                log.exception("error while closing an output of %s", self.out_dir)
        write_json_atomically(self.out_dir / "summary.json", self.summary.to_dict())

    def _write_birdseye(self) -> None:
        image = self.birdseye.image()
        if image is not None:
            cv2.imwrite(str(self.out_dir / "birdseye.png"), image)


def _output_fps(source_fps: float, options: AnalysisOptions) -> float:
    """Frame rate of the annotated video, so that it plays at the source's real speed."""
    if options.fps is not None:
        return min(options.fps, source_fps)
    return source_fps / (options.every or 1)


def _expected_frames(source: VideoSource, options: AnalysisOptions) -> int | None:
    if source.frame_count is None:
        return options.max_frames
    expected = source.frame_count
    if options.every:
        expected = -(-expected // options.every)
    if options.fps:
        expected = int(expected / max(source.fps / options.fps, 1.0)) + 1
    return min(expected, options.max_frames) if options.max_frames else expected
