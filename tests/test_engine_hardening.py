"""The live engine against hostile conditions: a webcam whose opener crashes or hangs, two
engines on one store, a killed engine's lease."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hostile import run_cli
from streams import small_clip

from crowdwatch.config import load_config
from crowdwatch.engine import Engine, EngineOptions, WorkerOptions
from crowdwatch.engine.capture import FrameGrabber
from crowdwatch.sources import video as video_module
from crowdwatch.store import StoreError, open_store


@pytest.fixture(scope="module")
def clip(sample_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_clip(sample_clip, tmp_path_factory.mktemp("clip") / "clip.mp4", seconds=6)


def camera(name: str, source: str | int) -> dict:
    return {
        "name": name,
        "source": source,
        "analysis_fps": 4.0,
        "zones": [{"name": "all", "polygon": [[0, 0], [384, 0], [384, 288], [0, 288]]}],
    }


def config_file(path: Path, cameras: list[dict]) -> Path:
    data = {"name": "hardening", "cameras": cameras, "estimator": {"kind": "ssd"}}
    path.write_text(yaml.safe_dump(data))
    return path


def wait_for(condition, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout_s} s")


CRASH = "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n"
HANG = "import time\ntime.sleep(60)\n"


@pytest.mark.parametrize(("probe", "reason"), [(CRASH, "SIGSEGV"), (HANG, "hung")])
def test_a_webcam_whose_opener_crashes_or_hangs_fails_alone(
    clip: Path, tmp_path: Path, monkeypatch, probe: str, reason: str
) -> None:
    monkeypatch.setattr(video_module, "_DEVICE_PROBE", probe)
    monkeypatch.setattr(video_module, "DEVICE_PROBE_TIMEOUT_S", 2.0)
    path = config_file(tmp_path / "event.yaml", [camera("good", str(clip)), camera("cam", 3)])
    store = open_store(tmp_path / "store.db")
    engine = Engine(load_config(path), store, EngineOptions(worker=WorkerOptions()))
    engine.start()
    try:
        wait_for(lambda: engine.workers["cam"].health().state == "failed", 20)
        wait_for(lambda: engine.workers["good"].stats.analysed >= 4, 60)
        status = {health.camera: health for health in engine.status()}
    finally:
        engine.stop()
        store.close()
    assert status["good"].state == "live"
    assert status["cam"].state == "failed" and reason in status["cam"].error
    assert "webcam:3" in status["cam"].error


def test_device_probe_isolates_a_crash(monkeypatch) -> None:
    monkeypatch.setattr(video_module, "_DEVICE_PROBE", CRASH)
    with pytest.raises(video_module.DeviceCrashed, match="SIGSEGV"):
        video_module.probe_device(0)
    grabber = FrameGrabber(5)
    assert grabber._open() is None
    assert grabber.state == "failed" and "crashed" in grabber.error


def test_a_missing_webcam_is_a_source_error_not_a_crash(capsys, tmp_path) -> None:
    # No device 63 on a test machine: opened in a child process, refused with one line.
    outcome = run_cli(capsys, "analyze", "63", "--out", tmp_path / "o", "-e", "ssd")
    assert outcome.clean and outcome.code == 2
    assert "webcam:63" in outcome.error_lines[0]


def test_a_second_engine_on_one_store_is_refused(clip: Path, tmp_path: Path, capsys) -> None:
    path = config_file(tmp_path / "event.yaml", [camera("good", str(clip))])
    store = open_store(tmp_path / "store.db")
    first = Engine(load_config(path), store, EngineOptions(reload_every_s=0.2))
    first.start()
    try:
        other = open_store(tmp_path / "store.db")
        with pytest.raises(StoreError, match="in use by engine"):
            Engine(load_config(path), other, EngineOptions()).start()
        other.close()
        outcome = run_cli(capsys, "run", path, "--store", tmp_path / "store.db", "--duration", "2")
        assert outcome.code == 2 and outcome.clean, outcome
        assert "in use by engine" in outcome.error_lines[0]
        # The first engine was left alone: its camera still live, its heartbeat renewed.
        before = store.lease().heartbeat
        time.sleep(0.05)
        first.tick()
        assert store.lease().heartbeat > before and store.lease().owner == first.owner
        assert first.workers["good"].health().state in ("starting", "live")
    finally:
        first.stop()
    assert store.lease() is None  # released on a clean stop
    store.close()


def test_a_killed_engines_lease_is_taken_over(clip: Path, tmp_path: Path) -> None:
    path = config_file(tmp_path / "event.yaml", [camera("good", str(clip))])
    db = tmp_path / "store.db"
    store = open_store(db)
    # A lapsed lease (an engine elsewhere, silent for longer than its ttl) ...
    store.acquire_lease("elsewhere:1:x", ttl_s=5, now=time.time() - 60)
    engine = Engine(load_config(path), store, EngineOptions())
    engine.start()
    engine.stop()
    # ... and the lease of a process of this host that was killed (kill -9: no release).
    dead = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    import socket

    store.acquire_lease(f"{socket.gethostname()}:{dead.pid}:y", ttl_s=300)
    dead.kill()
    dead.wait()
    engine = Engine(load_config(path), store, EngineOptions())
    engine.start()
    try:
        assert store.lease().owner == engine.owner
    finally:
        engine.stop()
        store.close()
