"""One analysis path: ``analyze``, the local engine and a Ray camera host measure the same.

The same recorded frames (the bundled PETS clip, cut short) with the calibrated sample config
(zones, a counting line, flow, pressure) and the shipped density model go through all three;
zone counts, densities, line crossings and alerts must agree to float rounding, and every run
delivers its alert events to a real webhook receiver that fails its first two requests.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import pytest
import yaml
from webhook_receiver import WebhookReceiver

from crowdwatch.config import parse_config
from crowdwatch.engine import CaptureOptions, Engine, EngineOptions, WorkerOptions
from crowdwatch.paths import sample_config
from crowdwatch.pipeline import AnalysisOptions, analyze
from crowdwatch.store import open_store

FRAMES = 36  # 5.1 s at the clip's true 7 frames/s


@pytest.fixture(scope="module")
def short_clip(sample_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first frames of the sample clip at full size (both paths decode this file)."""
    path = tmp_path_factory.mktemp("clip") / "plaza.avi"
    capture = cv2.VideoCapture(str(sample_clip))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (768, 576))
    for _ in range(FRAMES):
        ok, image = capture.read()
        assert ok
        writer.write(image)
    writer.release()
    capture.release()
    return path


def _config(clip: Path, webhook: str) -> dict:
    """The sample config on ``clip``, with thresholds the first seconds cross and clear."""
    config = yaml.safe_load(sample_config().read_text())
    camera = config["cameras"][0]
    camera["source"] = str(clip)
    road, crossing = camera["zones"]
    road["alerts"][0] = {"metric": "count", "latch_s": 0.5, "clear_latch_s": 0.5,
                         "levels": {"advisory": 4.5, "warning": 6.5}}  # fmt: skip
    crossing["alerts"][0] = {"metric": "count", "latch_s": 0.3, "clear_latch_s": 0.3,
                             "levels": {"advisory": 1.5}}  # fmt: skip
    config["webhooks"] = [{"url": webhook, "timeout_s": 5, "retries": 3}]
    return config


def _series(store_path: Path) -> dict:
    """Per (kind, target, frame): the measured values; per alert: what it was, relative to the
    run's first frame."""
    with open_store(store_path) as store:
        samples = store.metrics("plaza")
        alerts = store.alerts(camera="plaza")
    start = min(sample.time for sample in samples)
    values = {(s.kind, s.zone, s.frame_index): {**s.values, "level": s.level} for s in samples}
    described = sorted(
        (a.zone, a.rule, a.level, round(a.start - start, 3), round(a.opened - start, 3),
         round(a.value, 4), round(a.peak, 4))
        for a in alerts
    )  # fmt: skip
    return {"values": values, "alerts": described, "ids": {a.id for a in alerts}}


def _analyze_run(config: dict, folder: Path) -> None:
    """``crowdwatch analyze`` of the clip into ``folder/analyze`` and ``folder/analyze.db``."""
    options = AnalysisOptions(progress=False, write_video=False)
    analyze(None, parse_config(config), folder / "analyze", options, store=folder / "analyze.db")


def _engine_run(config: dict, store_path: Path, **options) -> None:
    """Run the engine on the clip frame for frame until every frame is analysed."""
    store = open_store(store_path)
    worker = WorkerOptions(default_fps=None, capture=CaptureOptions(every_frame=True))
    engine = Engine(parse_config(config), store, EngineOptions(worker=worker, **options))
    try:
        engine.start()
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if all(h.analysed_frames >= FRAMES for h in engine.status()):
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"the engine analysed {engine.status()} of {FRAMES} frames")
    finally:
        engine.stop()
        store.close()


def _delivered(receiver: WebhookReceiver, alert_count: int) -> set[str]:
    assert receiver.failed == 2, "the receiver failed twice: both were retried"
    kinds = [event["kind"] for event in receiver.events]
    assert kinds.count("opened") == kinds.count("closed") == alert_count
    return {event["alert"]["id"] for event in receiver.events}


def _assert_same(ours: dict, theirs: dict) -> None:
    assert ours["values"].keys() == theirs["values"].keys()
    for key, values in ours["values"].items():
        other = theirs["values"][key]
        assert values["level"] == other["level"], key
        for name, value in values.items():
            if name != "level" and value is not None:
                assert other[name] == pytest.approx(value, rel=1e-5, abs=1e-6), (key, name)
    assert ours["alerts"] == theirs["alerts"]


def test_analyze_the_engine_and_a_ray_worker_measure_the_same(
    short_clip: Path, tmp_path: Path
) -> None:
    runs = {}
    with WebhookReceiver(fail_first=2) as receiver:
        _analyze_run(_config(short_clip, receiver.url), tmp_path)
        runs["analyze"] = _series(tmp_path / "analyze.db")
        assert _delivered(receiver, len(runs["analyze"]["ids"])) == runs["analyze"]["ids"]
    with WebhookReceiver(fail_first=2) as receiver:
        _engine_run(_config(short_clip, receiver.url), tmp_path / "engine.db")
        runs["engine"] = _series(tmp_path / "engine.db")
        assert _delivered(receiver, len(runs["engine"]["ids"])) == runs["engine"]["ids"]

    reference = runs["analyze"]
    zones = {key[1] for key in reference["values"] if key[0] == "zone"}
    assert zones == {"road", "crossing"} and ("line", "walkway", FRAMES - 1) in reference["values"]
    assert len(reference["values"]) == 3 * FRAMES - 1  # a line has no flow on the first frame
    assert {alert[0] for alert in reference["alerts"]} >= {"road", "crossing"}
    road = [v["count"] for k, v in reference["values"].items() if k[:2] == ("zone", "road")]
    assert max(road) > 5  # the density model's heads, counted in the raised zone
    _assert_same(reference, runs["engine"])


def test_a_ray_camera_host_measures_what_analyze_measures(short_clip: Path, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    with WebhookReceiver() as receiver:
        _analyze_run(_config(short_clip, receiver.url), tmp_path)
    with WebhookReceiver(fail_first=2) as receiver:
        try:
            _engine_run(
                _config(short_clip, receiver.url),
                tmp_path / "ray.db",
                ray_address="local",
                ray_cameras_per_host=1,
                ray_cpus_per_host=1,
            )
        finally:
            ray.shutdown()
        ours = _series(tmp_path / "ray.db")
        assert _delivered(receiver, len(ours["ids"])) == ours["ids"]
    _assert_same(_series(tmp_path / "analyze.db"), ours)


class _Wrapped:
    """A wrapper that knows nothing of anchors (as the engine's shared-model lock once was)."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.model_file = inner, inner.name, inner.model_file

    def estimate(self, image):
        return self.inner.estimate(image)


def test_the_anchor_travels_with_the_estimate_whatever_wraps_the_estimator(
    sample_clip: Path,
) -> None:
    from crowdwatch.errors import EstimatorError
    from crowdwatch.estimators import EstimatorConfig, make_estimator
    from crowdwatch.pipeline import CameraAnalyzer
    from crowdwatch.sources import open_source
    from crowdwatch.types import Anchor, Estimate

    config = parse_config(_config(sample_clip, "http://127.0.0.1:9/hook"))
    density = make_estimator()
    with open_source(sample_clip) as frames:
        frame = next(iter(frames))
    direct = CameraAnalyzer(config.camera(), density).process(frame)
    wrapped_analyzer = CameraAnalyzer(config.camera(), _Wrapped(density))
    wrapped = wrapped_analyzer.process(frame)
    assert wrapped_analyzer.scene.anchor is Anchor.HEAD
    assert [z.count for z in wrapped.zones] == [z.count for z in direct.zones]
    # An estimate must say where it put people; an estimator that changes its mind is refused.
    with pytest.raises(TypeError):
        Estimate(density=direct.estimate.density)
    wrapped_analyzer.estimator = make_estimator(EstimatorConfig(kind="ssd"))
    with pytest.raises(EstimatorError, match="at their feet after placing them at their head"):
        wrapped_analyzer.process(frame)
