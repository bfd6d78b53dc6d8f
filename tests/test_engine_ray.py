"""Scale-out: camera workers as Ray actors on a local Ray cluster, writing to a real
PostgreSQL store, supervised by the engine."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pgserver import fresh_database_url
from streams import small_clip

from crowdwatch.config import parse_config
from crowdwatch.engine import Engine, EngineOptions
from crowdwatch.store import open_store

ray = pytest.importorskip("ray")


def _wait_for(condition, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout_s} s")


def test_cameras_run_as_ray_actors_into_postgresql(sample_clip: Path, tmp_path: Path) -> None:
    clip = small_clip(sample_clip, tmp_path / "clip.mp4")
    url = fresh_database_url()
    cameras = [
        {"name": name, "source": str(clip), "analysis_fps": 2, "zones": [
            {"name": "all", "polygon": [[0, 0], [384, 0], [384, 288], [0, 288]],
             "alerts": [{"metric": "count", "levels": {"advisory": 1000}}]}]}
        for name in ("north", "south")
    ]  # fmt: skip
    store = open_store(url)
    # One camera per host process (a host can run several, sharing its model).
    options = EngineOptions(ray_address="local", ray_cameras_per_host=1, ray_cpus_per_host=1)
    engine = Engine(parse_config({"cameras": cameras}), store, options)
    try:
        engine.start()
        _wait_for(lambda: all(h.analysed_frames >= 4 for h in engine.status()), 120)
        assert {h.state for h in engine.status()} == {"live"}
        nodes = {worker.node() for worker in engine.workers.values()}
        assert len(nodes) == 1  # one machine here; on a cluster, Ray spreads them
        assert len(engine._make_worker.hosts) == 2

        # A threshold lowered in the store reaches the actor through the engine.
        changed = store.latest_config().config
        changed["cameras"][0]["zones"][0]["alerts"][0]["levels"]["advisory"]["threshold"] = 0.5
        store.save_config(changed, author="maria")
        engine.tick()
        _wait_for(lambda: store.alerts(camera="north") != [], 20)
        assert store.alerts(camera="south") == []
    finally:
        engine.stop()
        ray.shutdown()
    assert engine._make_worker.hosts == []  # every host process was shut down
    assert len(store.metrics("north")) >= 4 and len(store.metrics("south")) >= 4
    assert {h.camera: h.state for h in store.health()} == {"north": "stopped", "south": "stopped"}
