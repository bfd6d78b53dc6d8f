"""The live engine on real video: many cameras, a camera that never opens, recording limits,
configuration changes while it runs, and a kill -9 in the middle of a run."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from streams import small_clip

from crowdwatch.config import load_config
from crowdwatch.engine import Engine, EngineOptions, WorkerOptions
from crowdwatch.recording import RecordingOptions
from crowdwatch.store import open_store

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def clip(sample_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_clip(sample_clip, tmp_path_factory.mktemp("clip") / "clip.mp4", seconds=10)


def _camera(name: str, source: str, threshold: float = 1000.0, fps: float = 4.0) -> dict:
    return {
        "name": name,
        "source": source,
        "analysis_fps": fps,
        "zones": [
            {
                "name": "all",
                "polygon": [[0, 0], [384, 0], [384, 288], [0, 288]],
                "alerts": [{"metric": "count", "latch_s": 0.5, "levels": {"advisory": threshold}}],
            }
        ],
    }


def _write_config(path: Path, cameras: list[dict]) -> Path:
    path.write_text(yaml.safe_dump({"name": "test-event", "cameras": cameras}))
    return path


def _wait_for(condition, timeout_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if condition():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout_s} s")


def _run_in_thread(engine: Engine) -> threading.Thread:
    thread = threading.Thread(target=engine.run, daemon=True)
    thread.start()
    _wait_for(lambda: len(engine.workers) == len(engine.config.cameras), 30)
    return thread


def test_bad_cameras_and_a_full_quota_leave_the_other_cameras_alone(
    clip: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00not a video" * 100)
    config_path = _write_config(
        tmp_path / "event.yaml",
        [
            _camera("good", str(clip)),
            _camera("quota", str(clip)),
            _camera("unreachable", "http://127.0.0.1:9/none.mjpg"),
            _camera("corrupt", str(broken)),
        ],
    )
    recording = RecordingOptions(tmp_path / "rec", segment_s=1.0, quota_bytes=None)
    # The "quota" camera gets a quota so small that recording stops after its first segment.
    tiny = RecordingOptions(tmp_path / "rec", segment_s=1.0, quota_bytes=1000, on_full="stop")
    options = EngineOptions(
        worker=WorkerOptions(recording=recording),
        per_camera={"quota": WorkerOptions(recording=tiny)},
    )
    store = open_store(tmp_path / "store.db")
    engine = Engine(load_config(config_path), store, options)
    engine.start()
    try:
        good, quota = engine.workers["good"], engine.workers["quota"]
        _wait_for(lambda: good.stats.analysed >= 12 and quota.stats.analysed >= 12, 60)
        _wait_for(lambda: quota.health().error is not None, 10)
        status = {health.camera: health for health in engine.status()}
    finally:
        engine.stop()

    assert status["good"].state == "live" and status["good"].error is None
    assert status["good"].analysis_fps == pytest.approx(4.0, rel=0.3)
    assert status["quota"].state == "live" and "quota full" in status["quota"].error
    assert status["unreachable"].state in ("starting", "reconnecting")
    assert "unreachable" in status["unreachable"].error
    assert status["corrupt"].state == "failed" and "corrupt" in status["corrupt"].error
    assert len(store.recordings("good", kind="segment")) >= 2
    assert len(store.recordings("quota", kind="segment")) <= 1
    assert len(store.metrics("quota")) >= 12  # analysis went on without recording
    assert {h.camera: h.state for h in store.health()} == {
        "good": "stopped",
        "quota": "stopped",
        "unreachable": "stopped",
        "corrupt": "stopped",
    }


def test_changes_in_the_store_and_in_the_file_apply_within_seconds(
    clip: Path, tmp_path: Path
) -> None:
    config_path = _write_config(tmp_path / "event.yaml", [_camera("gate", str(clip))])
    store = open_store(tmp_path / "store.db")
    engine = Engine(load_config(config_path), store, EngineOptions(reload_every_s=0.5), config_path)
    thread = _run_in_thread(engine)
    try:
        _wait_for(lambda: engine.workers["gate"].stats.analysed >= 2, 30)
        assert store.alerts() == []
        # An operator lowers the threshold in the store (as the console does).
        changed = store.latest_config().config
        changed["cameras"][0]["zones"][0]["alerts"][0]["levels"]["advisory"]["threshold"] = 0.5
        store.save_config(changed, author="maria", note="lower for the test")
        took = _wait_for(lambda: store.alerts(camera="gate") != [], 8)
        assert took < 5

        # A zone added in the store is measured within seconds.
        changed = store.latest_config().config
        extra = {**changed["cameras"][0]["zones"][0], "name": "left"}
        extra["polygon"] = [[0, 0], [192, 0], [192, 288], [0, 288]]
        changed["cameras"][0]["zones"].append(extra)
        store.save_config(changed, author="maria", note="split the square")
        _wait_for(lambda: store.metrics("gate", "left") != [], 8)

        # Someone edits the YAML file: the analysis rate changes.
        time.sleep(0.05)
        cameras = [_camera("gate", str(clip), threshold=0.5, fps=2.0)]
        _write_config(config_path, cameras)
        _wait_for(lambda: engine.workers["gate"].target_fps == 2.0, 8)
    finally:
        engine.request_stop()
        thread.join(30)

    changes = store.config_changes()
    by_maria = [c for c in changes if c.author == "maria"]
    assert [(c.path, c.old, c.new) for c in by_maria][0] == (
        "cameras[gate].zones[all].alerts[0].levels.advisory.threshold",
        1000.0,
        0.5,
    )
    assert any(c.path.startswith("cameras[gate].zones[left].polygon") for c in by_maria)
    from_file = [c for c in changes if c.author == f"file:{config_path}"]
    assert ("cameras[gate].analysis_fps", 4.0, 2.0) in [(c.path, c.old, c.new) for c in from_file]


def _engine_process(config: Path, store: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OPENCV_LOG_LEVEL": "ERROR"}
    return subprocess.Popen(
        [sys.executable, "-m", "crowdwatch.cli", "run", str(config), "--store", str(store),
         "--status-every", "0", "--fps", "4"],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=REPO,
    )  # fmt: skip


def _observed(path: Path) -> tuple[set, set]:
    """Metric rows and alert ids a separate reader sees now (none before the schema exists)."""
    if not path.exists():
        return set(), set()
    with sqlite3.connect(path, timeout=10) as connection:
        try:
            metrics = set(connection.execute("SELECT camera, zone, time, count FROM metrics"))
            alerts = {row[0] for row in connection.execute("SELECT id FROM alerts")}
        except sqlite3.OperationalError:  # the engine is still creating the tables
            return set(), set()
    return metrics, alerts


def test_kill_9_mid_run_loses_nothing_committed_and_the_engine_resumes(
    clip: Path, tmp_path: Path
) -> None:
    config_path = _write_config(
        tmp_path / "event.yaml", [_camera("a", str(clip), 0.5), _camera("b", str(clip), 0.5)]
    )
    store_path = tmp_path / "store.db"
    engine = _engine_process(config_path, store_path, tmp_path / "first.log")
    try:
        _wait_for(lambda: len(_observed(store_path)[0]) >= 20, 90)
        _wait_for(lambda: len(_observed(store_path)[1]) >= 2, 30)
        metrics_before, alerts_before = _observed(store_path)
    finally:
        engine.send_signal(signal.SIGKILL)
        engine.wait(30)
    killed_at = time.time()

    with sqlite3.connect(store_path) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    metrics_after, alerts_after = _observed(store_path)
    assert metrics_before <= metrics_after and alerts_before <= alerts_after

    restarted = _engine_process(config_path, store_path, tmp_path / "second.log")
    try:
        store = open_store(store_path)
        _wait_for(lambda: len(store.metrics("a", start=killed_at)) >= 4, 90)
    finally:
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(60) == 0, (tmp_path / "second.log").read_text()
    # The outage shows as a gap; alerts the kill left open were closed, not left dangling.
    assert any(gap.start < killed_at < (gap.end or 0) for gap in store.gaps("a"))
    orphans = [store.alert(alert_id) for alert_id in alerts_before]
    assert all(alert.closed is not None for alert in orphans)
    assert {h.state for h in store.health()} == {"stopped"}


def test_cameras_share_the_density_model_as_calls_side_by_side():
    """The onnxruntime model takes one single-threaded call per core at once and gives the same
    estimate as alone; a backend that does not declare it (OpenCV's DNN SSD) takes one call at a
    time."""
    import cv2
    import numpy as np

    from crowdwatch.engine import SharedEstimator, model_threads_and_slots
    from crowdwatch.estimators.density import DensityEstimator
    from crowdwatch.estimators.ssd import SsdPersonDetector
    from crowdwatch.paths import sample_video

    assert model_threads_and_slots(1, cores=2) == (2, 1)
    assert model_threads_and_slots(6, cores=2) == (1, 2)
    capture = cv2.VideoCapture(str(sample_video()))
    frames = [capture.read()[1] for _ in range(4)]
    capture.release()
    shared = SharedEstimator(DensityEstimator(threads=1), slots=2)
    assert shared.slots == 2
    alone = [shared.estimate(frame).count for frame in frames]
    side_by_side: dict[int, float] = {}

    def estimate(index: int) -> None:
        side_by_side[index] = shared.estimate(frames[index]).count

    threads = [threading.Thread(target=estimate, args=(i,)) for i in range(len(frames))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert np.allclose([side_by_side[i] for i in range(len(frames))], alone, rtol=1e-5)
    assert SharedEstimator(SsdPersonDetector(), slots=2).slots == 1


def test_cameras_analyse_at_staggered_instants_of_each_period(clip: Path, tmp_path: Path) -> None:
    """Camera k of N ticks k/N of a period after the first, so cameras started together do not
    all analyse (and commit their alerts) in the same instant."""
    config_path = _write_config(
        tmp_path / "event.yaml", [_camera(f"cam{i}", str(clip), fps=4.0) for i in range(4)]
    )
    store = open_store(tmp_path / "store.db")
    engine = Engine(load_config(config_path), store, EngineOptions())
    engine.start()
    try:
        workers = [engine.workers[f"cam{i}"] for i in range(4)]
        assert [w.tick_phase_s() for w in workers] == pytest.approx([0.0, 0.0625, 0.125, 0.1875])
        _wait_for(lambda: all(w.stats.analysed >= 6 for w in workers), 60)
    finally:
        engine.stop()
    assert all(len(store.metrics(f"cam{i}")) >= 6 for i in range(4))
