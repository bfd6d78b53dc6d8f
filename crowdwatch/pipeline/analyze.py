"""``crowdwatch analyze``: run one camera's analysis over a source and write the run folder.

Outputs in the run folder: ``annotated.mp4``, ``metrics.csv``, ``lines.csv`` (with counting
lines), ``alerts.jsonl``, ``summary.json``, ``birdseye.png`` (calibrated cameras: mean people per
m² seen from above) and ``snapshots/`` (one JPEG per alert, taken when it opened). What a frame
leaves behind is decided by :func:`crowdwatch.pipeline.outputs.build_run_outputs`, the same
code the live engine uses.

One run, one folder: a folder that already holds files is refused unless ``overwrite`` is
given, which first removes what an earlier run wrote there (see :func:`prepare_run_folder`).
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
from tqdm import tqdm

from crowdwatch.config.scaling import analysed_source
from crowdwatch.config.schema import CameraConfig, EventConfig
from crowdwatch.errors import CrowdwatchError, SourceError
from crowdwatch.estimators import Estimator, make_estimator
from crowdwatch.outputs import RunSummary, write_json_atomically
from crowdwatch.pipeline.camera import CameraAnalyzer, look_ahead_plan
from crowdwatch.pipeline.health import HealthReporter
from crowdwatch.pipeline.outputs import BIRDSEYE_FILE, RunOutputs, build_run_outputs
from crowdwatch.pipeline.outputs import recording_options as make_recording_options
from crowdwatch.pipeline.provenance import run_provenance
from crowdwatch.pipeline.run_folder import SUMMARY_FILE, VENUE_FOLDER, prepare_run_folder
from crowdwatch.pipeline.threads import limit_opencv_threads
from crowdwatch.pipeline.venue import VenueRun
from crowdwatch.sources import open_source, sample_frames
from crowdwatch.sources.video import VideoSource
from crowdwatch.store.open import open_store
from crowdwatch.store.sinks import WallClock
from crowdwatch.store.sql import SqlStore
from crowdwatch.types import FrameResult

log = logging.getLogger(__name__)

# How often ``analyze --store`` writes the camera's health (a live engine writes every second).
HEALTH_EVERY_S = 2.0


@dataclass(frozen=True)
class AnalysisOptions:
    """Which frames to analyse and what to write.

    Attributes:
        every: analyse every N-th frame.
        fps: analyse at most this many frames per second of source time.
        max_frames: stop after this many analysed frames (None: the whole source).
        write_video: write ``annotated.mp4``.
        progress: show a progress bar on stderr.
        overwrite: replace an earlier run's outputs in the run folder instead of refusing.
    """

    every: int | None = None
    fps: float | None = None
    max_frames: int | None = None
    write_video: bool = True
    progress: bool = True
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.every is not None and self.every < 1:
            raise CrowdwatchError(f"--every must be 1 or more, got {self.every}")
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps > 0):
            raise CrowdwatchError(f"--fps must be a positive number, got {self.fps}")
        if self.max_frames is not None and self.max_frames < 1:
            raise CrowdwatchError(f"--max-frames must be 1 or more, got {self.max_frames}")


def analyze(
    source: str | int | Path | None,
    config: EventConfig,
    out_dir: Path,
    options: AnalysisOptions | None = None,
    *,
    camera_name: str | None = None,
    estimator: Estimator | None = None,
    store: str | Path | None = None,
    record: Path | None = None,
    config_path: Path | None = None,
) -> RunSummary:
    """Analyse a video, folder, stream or webcam and write the run's files to ``out_dir``.

    ``source`` overrides the camera's configured sources: it is what is analysed (the camera's
    coordinates scaled from its ``frame_size`` to its frames when they differ). Without it the
    camera's ``analysis_source`` (a substream) is analysed when it names one, else its
    ``source``. Whatever happens (a read error, Ctrl-C), the files hold everything analysed up
    to that point and ``summary.json`` says whether the run completed. With ``store`` (a path
    or URL, see :func:`crowdwatch.store.open_store`) metrics, alerts and camera health also go
    to that store, video time 0 being the run's start; with ``record`` too, the analysed frames
    and heat maps are recorded there for replay.
    ``config_path`` is named (with its hash) in ``summary.json``.

    Raises:
        OutputError: ``out_dir`` holds files and ``options.overwrite`` is not set.

    Example:
        >>> from crowdwatch.config import default_config
        >>> summary = analyze("sample_videos/pets2009_s2l1.mp4",
        ...                   default_config("sample_videos/pets2009_s2l1.mp4"),
        ...                   Path("out"), AnalysisOptions(max_frames=20))  # doctest: +SKIP
    """
    options = options or AnalysisOptions()
    limit_opencv_threads()
    camera = config.camera(camera_name)
    if source is not None:
        camera = camera.model_copy(update={"source": source, "analysis_source": None})
    if record is not None and store is None:
        raise ValueError("recording needs a store to index it: give store as well as record")
    prepare_run_folder(out_dir, overwrite=options.overwrite, keep_also=(store, record))
    try:
        return _analyze_into(
            camera, config, out_dir, options, estimator, store, record, config_path
        )
    except BaseException as exc:
        if (out_dir / SUMMARY_FILE).exists():
            raise  # the run loop started and wrote its own summary
        # Failed before the first frame (the source, the model, the store): the folder still
        # gets a summary.json that says the run did not complete, and why.
        reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc)
        summary = RunSummary(source=str(analysed_source(camera)), camera=camera.name, estimator="")
        summary.error = reason or type(exc).__name__
        try:
            write_json_atomically(out_dir / SUMMARY_FILE, summary.to_dict())
        except OSError:
            log.exception("cannot write %s", out_dir / SUMMARY_FILE)
        raise


def _analyze_into(
    camera: CameraConfig,
    config: EventConfig,
    out_dir: Path,
    options: AnalysisOptions,
    estimator: Estimator | None,
    store: str | Path | None,
    record: Path | None,
    config_path: Path | None,
) -> RunSummary:
    with open_source(analysed_source(camera), file_fps=camera.source_fps) as frames:
        # A given estimator keeps its threads, so it gets one frame ahead; one built here gets
        # the plan's threads and as many frames at once (see look_ahead_plan).
        ahead = 1
        if estimator is None:
            threads, ahead = look_ahead_plan(config.estimator)
            estimator = make_estimator(config.estimator, threads=threads)
        provenance = run_provenance(config, config_path=config_path, estimator=estimator)
        analyzer = CameraAnalyzer(camera, estimator, config.heatmap, run_id=provenance["run_id"])
        fps = _output_fps(frames.fps, options)
        opened = open_store(store) if store else None
        try:
            run_id = provenance["run_id"]  # the store's run, its alert ids, summary.json
            if opened is not None:
                opened.save_config(
                    config, author="crowdwatch analyze", note=f"analysis of {camera.name}"
                )
                opened.start_run(
                    camera.name,
                    "analyze",
                    source=frames.name,
                    config_hash=provenance["config_sha256"],
                    model=provenance["model_file"],
                    run_id=run_id,
                )
            outputs = build_run_outputs(
                config,
                camera,
                annotate=analyzer.annotate,
                clock=WallClock.starting_now(),
                folder=out_dir,
                store=opened,
                recording=make_recording_options(config, record, fps=fps) if record else None,
                video_fps=fps if options.write_video else None,
                run_id=run_id,
            )
        except BaseException:
            if opened is not None:
                opened.close()
            raise
        health = HealthReporter(
            opened, camera.name, target_fps=camera.analysis_fps, every_s=HEALTH_EVERY_S
        )
        venue = None
        if config.venue is not None and camera.calibration is not None:
            venue = VenueRun(
                config,
                store=opened,
                clock=outputs.clock,
                run_id=run_id,
                folder=out_dir / VENUE_FOLDER,
            )
        run = _Run(
            analyzer=analyzer,
            ahead=ahead,
            source=frames,
            out_dir=out_dir,
            options=options,
            outputs=outputs,
            health=health,
            store=opened,
            venue=venue,
        )
        run.summary.provenance = provenance
        return run.execute()


class _Run:
    """One analysis run: the loop over frames, its outputs and its summary."""

    def __init__(
        self,
        *,
        analyzer: CameraAnalyzer,
        ahead: int = 1,
        source: VideoSource,
        out_dir: Path,
        options: AnalysisOptions,
        outputs: RunOutputs,
        health: HealthReporter,
        store: SqlStore | None,
        venue: VenueRun | None = None,
    ) -> None:
        self.analyzer = analyzer
        self.ahead = ahead
        self.source = source
        self.out_dir = out_dir
        self.options = options
        self.outputs = outputs
        self.health = health
        self.store = store
        self.venue = venue
        self.summary = RunSummary(
            source=source.name,
            camera=analyzer.camera.name,
            estimator=analyzer.estimator.name,
            frames_in_source=source.frame_count,
        )

    def execute(self) -> RunSummary:
        started = time.perf_counter()
        estimator_ms = 0.0
        last_time = 0.0
        self.health.report("starting", force=True)
        try:
            for result in self._results():
                estimator_ms += result.estimator_ms
                last_time = result.frame.time_s
                self._keep(result)
            self._count_alerts(self.outputs.emit(self.analyzer.finish(last_time)))
            ended_early = getattr(self.source, "ended_early", None)
            if ended_early:
                # Frames read fell short of the container's count: say so, never "completed".
                raise SourceError(ended_early)
            self.summary.completed = True
        except KeyboardInterrupt:
            self.summary.error = "interrupted"
            raise
        except Exception as exc:
            self.summary.error = (
                str(exc) if isinstance(exc, CrowdwatchError) else (f"{type(exc).__name__}: {exc}")
            )
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
        if self.options.max_frames is not None:
            frames = itertools.islice(frames, self.options.max_frames)
        try:
            # A file's next frames are decoded and estimated while this one is measured and drawn.
            for result in self.analyzer.process_stream(frames, ahead=self.ahead):
                yield result
                bar.update(1)
        finally:
            bar.close()

    def _keep(self, result: FrameResult) -> None:
        events = self.outputs.keep(result)
        if self.venue is not None:  # the one camera on the venue plan, after every frame
            self.venue.add(self.analyzer.camera.name, result, self.analyzer.scene)
            self.venue.tick(result.frame.time_s, {self.analyzer.camera.name: "live"})
        self.summary.add_frame(
            result.frame.time_s, result.estimate.count, result.zones, result.lines
        )
        self._count_alerts(events)
        self.health.frame_analysed(self.outputs.clock.wall(result.frame.time_s))
        self.health.report("live", error=self.outputs.recording_error or self.outputs.store_error)

    def _count_alerts(self, events) -> None:
        for event in events:
            if event.kind == "opened":
                self.summary.add_alert(event.record.zone, event.record.level)

    def _close(self) -> None:
        error = self.summary.error
        state = "stopped" if not error or error == "interrupted" else "failed"
        self.outputs.close(
            extra=[
                self._write_birdseye,
                self._close_venue,
                lambda: self.health.report(state, error=error, force=True),
                self._close_store,
            ]
        )
        write_json_atomically(self.out_dir / SUMMARY_FILE, self.summary.to_dict())

    def _close_venue(self) -> None:
        if self.venue is not None:
            self.venue.close(self.summary.last_time_s or 0.0)

    def _close_store(self) -> None:
        if self.store is not None:
            try:
                self.store.end_run(self.summary.provenance["run_id"])
            finally:
                self.store.close()

    def _write_birdseye(self) -> None:
        image = self.outputs.birdseye_image()
        if image is not None:
            cv2.imwrite(str(self.out_dir / BIRDSEYE_FILE), image)


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
