"""The live engine against real cameras that drop and come back: HTTP MJPEG (ffmpeg) and RTSP
(GStreamer's RTSP server, H.264, what most CCTV cameras speak)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streams import MjpegServer, RtspServer, small_clip

from crowdwatch.config import parse_config
from crowdwatch.engine import CaptureOptions, Engine, EngineOptions, WorkerOptions
from crowdwatch.store import open_store


@pytest.fixture(scope="module")
def clip(sample_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_clip(sample_clip, tmp_path_factory.mktemp("clip") / "clip.mp4")


def _wait_for(condition, timeout_s: float, server: MjpegServer | None = None) -> float:
    """Seconds until ``condition()`` held; fails the test after ``timeout_s``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if server is not None:
            server.keep_alive()
        if condition():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout_s} s")


def _watch(
    url: str,
    tmp_path: Path,
    camera: dict,
    open_timeout_s: float = 2,
    read_timeout_s: float = 2,
    stall_s: float = 2,
):
    """An engine watching camera "gate" at ``url``, with a new SQLite store."""
    config = parse_config({"cameras": [{"name": "gate", "source": url, **camera}]})
    capture = CaptureOptions(
        open_timeout_s=open_timeout_s, read_timeout_s=read_timeout_s, backoff_s=0.2, max_backoff_s=1
    )
    options = EngineOptions(worker=WorkerOptions(capture=capture, stall_s=stall_s))
    store = open_store(tmp_path / "store.db")
    engine = Engine(config, store, options).start()
    return engine, engine.workers["gate"], store


def test_a_dropped_stream_reconnects_by_itself_and_the_gap_is_recorded(
    clip: Path, tmp_path: Path
) -> None:
    server = MjpegServer(clip).start()
    engine, worker, store = _watch(server.url, tmp_path, {"analysis_fps": 4})
    try:
        _wait_for(lambda: worker.stats.analysed >= 4, 60, server)
        assert worker.health().state == "live"

        server.outage()
        down_at = time.time()
        _wait_for(lambda: worker.state() in ("reconnecting", "stalled"), 10)
        time.sleep(2.0)  # the camera stays away a while
        analysed_during_outage = worker.stats.analysed

        server.resume()
        back_at = time.time()
        took = _wait_for(lambda: worker.stats.analysed > analysed_during_outage + 2, 20, server)
        assert took < 6, f"took {took:.1f} s to resume after the stream came back"
        assert worker.health().state == "live" and worker.health().reconnects >= 1
    finally:
        engine.stop()
        server.stop()

    (gap,) = store.gaps("gate")
    assert down_at - 3 <= gap.start <= back_at and back_at <= gap.end <= back_at + 8
    before = store.metrics("gate", end=gap.start)
    after = store.metrics("gate", start=gap.end)
    assert before and after
    assert not store.metrics("gate", start=gap.start + 2.5, end=back_at - 0.5)
    assert store.health("gate")[0].state == "stopped"


def test_a_stream_that_hangs_is_reported_stalled_and_recovers(clip: Path, tmp_path: Path) -> None:
    server = MjpegServer(clip).start()
    engine, worker, store = _watch(server.url, tmp_path, {}, read_timeout_s=4, stall_s=1.5)
    try:
        _wait_for(lambda: worker.stats.analysed >= 3, 60, server)
        server.freeze()
        states = lambda: [event.state for event in store.camera_events("gate")]  # noqa: E731
        _wait_for(lambda: "stalled" in states(), 6)
        server.thaw()
        analysed = worker.stats.analysed
        _wait_for(lambda: worker.stats.analysed > analysed + 2, 20, server)
        assert worker.state() == "live"
    finally:
        server.thaw()
        engine.stop()
        server.stop()
    assert "stalled" in [event.state for event in store.camera_events("gate")]
    assert [gap.reason for gap in store.gaps("gate")][:1] == ["stalled"]


def test_an_rtsp_camera_that_reboots_is_read_again_on_the_same_url(
    sample_clip: Path, tmp_path: Path
) -> None:
    clip = small_clip(sample_clip, tmp_path / "clip.mp4", seconds=40)
    server = RtspServer(clip).start()
    engine, worker, store = _watch(server.url, tmp_path, {"analysis_fps": 4}, open_timeout_s=3)
    try:
        _wait_for(lambda: worker.stats.analysed >= 4, 60)
        assert worker.health().state == "live"
        server.outage()
        _wait_for(lambda: worker.state() in ("reconnecting", "stalled"), 10)
        analysed_during_outage = worker.stats.analysed
        server.resume()
        took = _wait_for(lambda: worker.stats.analysed > analysed_during_outage + 2, 30)
        assert took < 15, f"took {took:.1f} s to read the camera again"
        assert worker.health().state == "live" and worker.health().reconnects >= 1
    finally:
        engine.stop()
        server.stop()
    (gap,) = store.gaps("gate")
    assert store.metrics("gate", end=gap.start) and store.metrics("gate", start=gap.end)
    # Real frames of the clip were analysed: people were counted in them.
    counts = [sample.values["count"] for sample in store.metrics("gate")]
    assert max(counts) > 1
