"""Recording on real frames: segments by time, heat-map snapshots, the quota, a corrupt
segment during replay, a crash's unfinished segment, and people blurred for privacy."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from crowdwatch.estimators import make_estimator
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
    options = RecordingOptions(tmp_path, segment_s=10, privacy_blur=True)
    recorder = CameraRecorder("gate", options, store)
    for i, image in enumerate(clip_frames[:6]):
        estimate = estimator.estimate(image)
        recorder.add(image, T0 + i, estimate.density, estimate)
    recorder.close()
    replay = Replay(store, tmp_path, "gate", T0, T0 + 10)
    summary = render_replay(replay, tmp_path / "replay.mp4")
    assert summary.frames == 6 and (tmp_path / "replay.mp4").stat().st_size > 1000
    overview = recording_overview(store, "gate", T0, T0 + 10)
    assert len(overview.segments) == 1 and len(overview.snapshots) == 1


def test_parse_time_forms() -> None:
    assert parse_time("2026-01-01T01:00:00+01:00") == parse_time("2026-01-01T00:00:00Z")
    assert parse_time("-2h", now=10_000.0) == 2_800.0
    with pytest.raises(ValueError, match="cannot read time 'yesterday'"):
        parse_time("yesterday")
