"""Recording on real frames: segments by time, heat-map snapshots, the quota, a corrupt
segment during replay, a crash's unfinished segment, people blurred for privacy, and the live
preview the console's wall shows."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from crowdwatch.config import parse_config
from crowdwatch.estimators import make_estimator
from crowdwatch.pipeline import CameraAnalyzer
from crowdwatch.pipeline.outputs import build_run_outputs
from crowdwatch.recording import (
    CameraRecorder,
    RecordingOptions,
    Replay,
    blur_people,
    people_mask,
    recording_overview,
)
from crowdwatch.recording.render import parse_time, render_replay
from crowdwatch.store import MetricSample, open_store
from crowdwatch.store.sinks import WallClock
from crowdwatch.types import Frame

T0 = 1_760_000_000.0


@pytest.fixture
def store(tmp_path: Path):
    opened = open_store(tmp_path / "store.db")
    yield opened
    opened.close()


def _record(store, root: Path, frames: list[np.ndarray], seconds: float, **options) -> None:
    """Record ``frames`` evenly over ``seconds`` of wall time from T0, with a heat map each."""
    recorder = CameraRecorder("gate", RecordingOptions(root, **options), store)
    heat = np.full(frames[0].shape[:2], 1e-4, np.float32)
    for i, image in enumerate(frames):
        recorder.add(image, T0 + i * seconds / len(frames), heat)
    recorder.close()
    return recorder


def test_segments_and_snapshots_are_indexed_by_time_and_replay_in_order(
    store, tmp_path: Path, clip_frames: list[np.ndarray]
) -> None:
    frames = clip_frames[:30]
    _record(store, tmp_path, frames, seconds=30, segment_s=10, snapshot_every_s=5)
    segments = store.recordings("gate", kind="segment")
    snapshots = store.recordings("gate", kind="snapshot")
    assert [round(s.start - T0) for s in segments] == [0, 10, 20]
    assert [round(s.start - T0) for s in snapshots] == [0, 5, 10, 15, 20, 25]
    assert all((tmp_path / s.path).is_file() for s in segments + snapshots)
    for index in range(10):
        store.write_metrics([MetricSample("gate", "all", T0 + index * 3, {"count": index})])

    replay = Replay(store, tmp_path, "gate", T0 + 8, T0 + 21)
    replayed = list(replay)
    assert [round(f.time - T0) for f in replayed] == list(range(8, 22))
    assert replay.problems == []
    # Real frames come back (lossy, so compare coarsely) with the heat map and metrics then.
    original = cv2.resize(frames[12], (64, 48)).astype(float)
    back = cv2.resize(replayed[4].image, (64, 48)).astype(float)
    assert np.abs(original - back).mean() < 8
    assert replayed[4].heat is not None and replayed[4].heat_time == pytest.approx(T0 + 10)
    assert float(replayed[4].heat.sum()) == pytest.approx(1e-4 * 576 * 768, rel=0.01)
    assert [m.value("count") for m in replayed[4].metrics] == [4.0]  # sampled at T0 + 12


def test_a_corrupt_segment_is_reported_and_the_rest_still_plays(
    store, tmp_path: Path, clip_frames: list[np.ndarray]
) -> None:
    _record(store, tmp_path, clip_frames[:30], seconds=30, segment_s=10)
    middle = store.recordings("gate", kind="segment")[1]
    (tmp_path / middle.path).write_bytes(b"\x00\x01garbage" * 500)

    replay = Replay(store, tmp_path, "gate", T0, T0 + 40)
    times = [round(f.time - T0) for f in replay]
    assert times == list(range(0, 10)) + list(range(20, 30))
    assert len(replay.problems) == 1 and middle.path in replay.problems[0]
    assert store.recordings("gate", kind="segment")[1].status == "corrupt"


def test_the_quota_deletes_the_oldest_recordings(
    store, tmp_path: Path, clip_frames: list[np.ndarray]
) -> None:
    _record(store, tmp_path, clip_frames[:5], seconds=5, segment_s=10)
    one_segment = store.recorded_bytes("gate")
    store.remove_recording(store.recordings("gate")[0].path)  # a clean slate, files stay
    quota = int(one_segment * 2.5)
    _record(store, tmp_path, clip_frames[:40], seconds=40, segment_s=5, quota_bytes=quota)
    kept = store.recordings("gate", kind="segment")
    assert store.recorded_bytes("gate") <= quota
    assert 1 <= len(kept) < 8 and round(kept[-1].start - T0) == 35  # the newest are kept
    on_disk = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.mp4")}
    assert {entry.path for entry in kept} <= on_disk


def test_stop_policy_and_a_full_disk_stop_recording_with_the_reason(
    store, tmp_path: Path, clip_frames: list[np.ndarray]
) -> None:
    recorder = _record(
        store, tmp_path, clip_frames[:20], 20, segment_s=5, quota_bytes=1, on_full="stop"
    )
    assert not recorder.enabled and "quota full" in recorder.error
    assert len(store.recordings("gate", kind="segment")) == 1
    recorder = _record(store, tmp_path / "b", clip_frames[:5], 5, min_free_bytes=2**62)
    assert not recorder.enabled and "disk almost full" in recorder.error


def test_a_segment_left_open_by_a_crash_is_removed_at_start(
    store, tmp_path: Path, clip_frames: list[np.ndarray]
) -> None:
    crashed = CameraRecorder("gate", RecordingOptions(tmp_path), store)
    crashed.add(clip_frames[0], T0)  # never closed, like a process killed mid-segment
    (partial,) = tmp_path.rglob("*.partial.mp4")
    CameraRecorder("gate", RecordingOptions(tmp_path), store)
    assert not partial.exists() and store.recordings("gate", kind="segment") == []


def test_privacy_blur_hides_people_and_keeps_the_scene(clip_frames: list[np.ndarray]) -> None:
    image = clip_frames[10]
    estimate = make_estimator().estimate(image)
    assert estimate.count > 2
    mask = people_mask(estimate, image.shape[:2])
    blurred = blur_people(image, estimate)
    assert 0.005 < mask.mean() < 0.3
    assert np.array_equal(blurred[~mask], image[~mask])  # the scene is untouched
    # Where people are, fine detail (what identifies someone) is gone.
    detail_before = cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F)
    detail_after = cv2.Laplacian(cv2.cvtColor(blurred, cv2.COLOR_BGR2GRAY), cv2.CV_64F)
    assert np.abs(detail_after[mask]).mean() < 0.6 * np.abs(detail_before[mask]).mean()
    for x, y in estimate.points.astype(int):
        assert mask[min(y, mask.shape[0] - 1), min(x, mask.shape[1] - 1)]


def test_recording_with_privacy_blur_and_rendering_a_replay(
    store, tmp_path: Path, clip_frames: list[np.ndarray]
) -> None:
    estimator = make_estimator()
    recorder = CameraRecorder("gate", RecordingOptions(tmp_path, segment_s=10), store)
    for i, image in enumerate(clip_frames[:6]):
        estimate = estimator.estimate(image)
        recorder.add(blur_people(image, estimate), T0 + i, estimate.density)
    recorder.close()
    replay = Replay(store, tmp_path, "gate", T0, T0 + 10)
    summary = render_replay(replay, tmp_path / "replay.mp4")
    assert summary.frames == 6 and (tmp_path / "replay.mp4").stat().st_size > 1000
    overview = recording_overview(store, "gate", T0, T0 + 10)
    assert len(overview.segments) == 1 and len(overview.snapshots) == 1


# -- live preview ------------------------------------------------------------------------------


def _camera_outputs(store, recording: RecordingOptions, **config: object):
    """Camera ``gate``'s analyzer and run outputs, as a run builds them (``config``: more of
    the event config, e.g. ``privacy``), recording with ``recording``."""
    event = parse_config({"cameras": [{"name": "gate", "source": "unused.mp4"}], **config})
    analyzer = CameraAnalyzer(event.camera(), make_estimator())
    outputs = build_run_outputs(
        event,
        event.camera(),
        annotate=analyzer.annotate,
        clock=WallClock(),
        store=store,
        recording=recording,
    )
    return analyzer, outputs


def _preview(folder: Path) -> tuple[dict, np.ndarray, np.ndarray | None]:
    """The live preview's info, decoded image and heat map (None when absent)."""
    info = json.loads((folder / "live.json").read_text())
    image = cv2.imread(str(folder / "live.jpg"))
    heat_file = folder / "live.heat.npz"
    heat = None
    if heat_file.exists():
        with np.load(heat_file) as data:
            heat = data["heat"]
            assert tuple(data["shape"]) == (576, 768)  # the analysed frame's size, for zones
    return info, image, heat


def test_the_live_preview_is_the_latest_frame_refreshed_at_most_once_a_second(
    store, tmp_path: Path, clip_frames: list[np.ndarray]
) -> None:
    recorder = CameraRecorder("gate", RecordingOptions(tmp_path, segment_s=2), store)
    folder = tmp_path / "gate"
    shown: list[float] = []
    for i, image in enumerate(clip_frames[:12]):  # a frame every 0.4 s for 4.8 s
        heat = np.full(image.shape[:2], (i + 1) * 1e-5, np.float32)
        recorder.add(image, T0 + i * 0.4, heat)
        info, preview, small = _preview(folder)
        if not shown or info["time"] != shown[-1]:
            shown.append(info["time"])
            written = i
        # Always the frame it says it is, with that frame's heat map (totals kept).
        assert info["time"] == T0 + written * 0.4
        assert preview.shape == (576, 768, 3) and (info["width"], info["height"]) == (768, 576)
        coarse = cv2.resize(preview, (64, 48)).astype(float)
        errors = [np.abs(cv2.resize(f, (64, 48)) - coarse).mean() for f in clip_frames[:12]]
        assert int(np.argmin(errors)) == written and errors[written] < 4  # JPEG, lossy
        assert small.dtype == np.float16 and small.shape[1] <= 320
        assert float(small.astype(np.float64).sum()) == pytest.approx(
            (written + 1) * 1e-5 * 576 * 768, rel=0.01
        )
    assert [round(t - T0, 1) for t in shown] == [0.0, 1.2, 2.4, 3.6]
    assert all(b - a >= 1.0 for a, b in zip(shown, shown[1:], strict=False))
    recorder.close()
    # Overwritten in place, never indexed, no temporary files left behind.
    assert not any("live" in entry.path for entry in store.recordings("gate"))
    assert {p.name for p in folder.glob("live*")} == {"live.heat.npz", "live.jpg", "live.json"}
    assert not list(tmp_path.rglob("*.tmp"))


def test_the_live_preview_is_the_recorded_picture_scaled_and_blurred(
    store, tmp_path: Path, clip_frames: list[np.ndarray]
) -> None:
    """Through the one path every run uses: privacy from the config, decided in the outputs."""
    image = clip_frames[10]
    analyzer, outputs = _camera_outputs(
        store, RecordingOptions(tmp_path, max_width=384), privacy={"blur_people": True}
    )
    result = analyzer.process(Frame(image, 0, T0, "gate"))
    estimate = result.estimate
    outputs.keep(result)
    info, preview, heat = _preview(tmp_path / "gate")
    assert preview.shape == (288, 384, 3) and (info["width"], info["height"]) == (384, 288)
    assert float(heat.astype(np.float64).sum()) == pytest.approx(estimate.count, rel=0.02)
    # People are pixelated in the preview as in the recording: fine detail there is gone.
    mask = cv2.resize(people_mask(estimate, image.shape[:2]).astype(np.uint8), (384, 288)) > 0
    small = cv2.resize(image, (384, 288), interpolation=cv2.INTER_AREA)
    blurred = cv2.resize(blur_people(image, estimate), (384, 288), interpolation=cv2.INTER_AREA)
    raw_error = np.abs(preview - small.astype(float))[mask].mean()
    blurred_error = np.abs(preview - blurred.astype(float))[mask].mean()
    assert blurred_error < 0.3 * raw_error  # where people are, it is the blurred picture
    detail = [
        np.abs(cv2.Laplacian(cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY), cv2.CV_64F))[mask].mean()
        for picture in (small, preview)
    ]
    assert detail[1] < 0.7 * detail[0]
    outputs.close()


def test_keep_stamps_the_store_writes_before_the_recording_that_follows_them(
    store, tmp_path: Path, clip_frames: list[np.ndarray]
) -> None:
    """The engine's capture -> metrics / alert latencies end when the store has the rows: the
    stamps are taken after the writes and before the frame is recorded (a segment, the live
    preview), whose files are newer."""
    import time

    analyzer, outputs = _camera_outputs(store, RecordingOptions(tmp_path))
    before = time.time()
    outputs.keep(analyzer.process(Frame(clip_frames[0], 0, T0, "gate")))
    assert outputs.metrics_written_at is not None and outputs.alerts_sent_at is not None
    assert before <= outputs.metrics_written_at <= outputs.alerts_sent_at
    assert store.latest_metrics("gate")  # written when stamped
    preview_written = (tmp_path / "gate" / "live.json").stat().st_mtime
    assert outputs.alerts_sent_at <= preview_written + 0.01  # mtime granularity
    outputs.close()


def test_no_live_preview_when_it_is_off_and_no_stale_heat_without_a_heat_map(
    store, tmp_path: Path, clip_frames: list[np.ndarray]
) -> None:
    _record(store, tmp_path, clip_frames[:4], 4, preview_every_s=0)
    assert not list((tmp_path / "gate").glob("live*"))
    assert store.recordings("gate", kind="segment")  # recording itself went on

    recorder = CameraRecorder("cam", RecordingOptions(tmp_path), store)
    recorder.add(clip_frames[0], T0, np.full((576, 768), 1e-4, np.float32))
    recorder.add(clip_frames[1], T0 + 1)  # no heat map for this frame
    info, _, heat = _preview(tmp_path / "cam")
    assert info["time"] == T0 + 1 and heat is None
    recorder.close()


def test_the_live_preview_survives_the_quota_a_restart_and_its_own_write_errors(
    store, tmp_path: Path, clip_frames: list[np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    _record(store, tmp_path, clip_frames[:5], 5, segment_s=10)
    quota = store.recorded_bytes("gate") * 2
    _record(store, tmp_path, clip_frames[:30], 30, segment_s=5, quota_bytes=quota)
    CameraRecorder("gate", RecordingOptions(tmp_path), store)  # cleans up partial files
    folder = tmp_path / "gate"
    info, _, _ = _preview(folder)
    assert info["time"] == T0 + 29 and store.recorded_bytes("gate") <= quota

    # Recording stopped by the quota: the preview goes on while the analysis does.
    stopped = _record(store, tmp_path, clip_frames[:6], 6, quota_bytes=1, on_full="stop")
    assert not stopped.enabled and _preview(folder)[0]["time"] == T0 + 5

    # A preview that cannot be written is reported once and recording goes on.
    (folder / "live.jpg").unlink()
    (folder / "live.jpg").mkdir()  # os.replace onto a folder fails
    with caplog.at_level(logging.WARNING, logger="crowdwatch.recording.recorder"):
        recorder = CameraRecorder("gate", RecordingOptions(tmp_path, segment_s=5), store)
        for i, image in enumerate(clip_frames[:8]):
            recorder.add(image, T0 + 100 + i)
        recorder.close()
    assert recorder.enabled and recorder.error is None
    assert len(store.recordings("gate", T0 + 100, T0 + 110, kind="segment")) == 2
    warnings = [r for r in caplog.records if "live preview" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


def test_parse_time_forms() -> None:
    assert parse_time("2026-01-01T01:00:00+01:00") == parse_time("2026-01-01T00:00:00Z")
    assert parse_time("-2h", now=10_000.0) == 2_800.0
    with pytest.raises(ValueError, match="cannot read time 'yesterday'"):
        parse_time("yesterday")


def test_each_recorded_frame_keeps_its_own_density_and_the_quota_removes_it(
    store, tmp_path: Path, clip_frames: list[np.ndarray]
) -> None:
    from crowdwatch.recording.recorder import density_path_of, load_segment_density

    estimator = make_estimator()
    recorder = CameraRecorder("gate", RecordingOptions(tmp_path, segment_s=3), store)
    estimates = [estimator.estimate(image) for image in clip_frames[:8]]
    for i, (image, estimate) in enumerate(zip(clip_frames[:8], estimates, strict=True)):
        recorder.add(image, T0 + i, estimate.density, density=estimate.density)
    recorder.close()
    segments = store.recordings("gate", kind="segment")
    assert len(segments) >= 2
    first = tmp_path / segments[0].path
    assert density_path_of(first).is_file()
    for i in range(3):  # the frame nearest the time asked for, with its people kept
        density, shape, when = load_segment_density(density_path_of(first), T0 + i + 0.2)
        assert when == T0 + i and shape == (576, 768) and density.shape[1] <= 128
        assert float(density.sum()) == pytest.approx(estimates[i].count, rel=0.01)
    assert load_segment_density(density_path_of(first), T0 + 30) is None
    # The quota removes a segment with its frame times and densities.
    recorder._delete(segments[0])
    assert not first.exists() and not density_path_of(first).exists()
