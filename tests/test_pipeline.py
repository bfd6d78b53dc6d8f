"""The analysis pipeline through its Python API, including a run that fails halfway."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from crowdwatch.alerts import read_alert_log
from crowdwatch.config import EstimatorConfig, load_config, parse_config
from crowdwatch.estimators import make_estimator
from crowdwatch.paths import sample_config, sample_video
from crowdwatch.pipeline import AnalysisOptions, CameraAnalyzer, analyze
from crowdwatch.pipeline.camera import look_ahead_plan
from crowdwatch.sources import open_source, sample_frames
from crowdwatch.types import Estimate


class FailsAfter:
    """The real SSD detector, made to fail at a given frame (a crashed model or GPU)."""

    name = "ssd"

    def __init__(self, frames: int) -> None:
        self._inner = make_estimator(EstimatorConfig(kind="ssd"))
        self.anchor, self.model_file = self._inner.anchor, self._inner.model_file
        self._left = frames

    def estimate(self, image: np.ndarray) -> Estimate:
        if self._left == 0:
            raise RuntimeError("model crashed")
        self._left -= 1
        return self._inner.estimate(image)


def test_a_failing_run_keeps_everything_it_recorded(tmp_path: Path) -> None:
    config = parse_config({
        "cameras": [{
            "name": "plaza", "source": str(sample_video()),
            "zones": [{"name": "all", "polygon": [[0, 0], [768, 0], [768, 576], [0, 576]],
                       "alerts": [{"metric": "count", "latch_s": 0.2, "levels": {"warning": 1}}]}],
        }]
    })  # fmt: skip
    with pytest.raises(RuntimeError, match="model crashed"):
        analyze(None, config, tmp_path, AnalysisOptions(progress=False), estimator=FailsAfter(12))
    with (tmp_path / "metrics.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 12
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["completed"] is False and "model crashed" in summary["error"]
    assert summary["frames_analysed"] == 12
    # The alert was logged when it opened, and again at the crash with its time so far.
    lines = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert [line["event"] for line in lines] == ["opened", "open"]
    [alert] = read_alert_log(tmp_path / "alerts.jsonl")
    assert alert["open"] is True and alert["level"] == "warning" and alert["end_s"] > 0


def test_camera_analyzer_measures_calibrated_zones() -> None:
    camera = load_config(sample_config()).camera()
    analyzer = CameraAnalyzer(camera, make_estimator(EstimatorConfig(kind="ssd")))
    with open_source(camera.source) as source:
        results = [analyzer.process(frame) for frame in sample_frames(source, every=50)]
    road = [next(z for z in result.zones if z.zone == "road") for result in results]
    assert all(z.area_m2 == pytest.approx(road[0].area_m2) for z in road)
    assert all(z.density == pytest.approx(z.count / z.area_m2) for z in road)
    assert max(z.count for z in road) >= 3
    image = analyzer.annotate(results[-1])
    assert image.shape == (576, 768, 3) and image.dtype == np.uint8


@pytest.mark.parametrize(("threads", "ahead"), [(2, 1), (1, 2), (1, 3)])
def test_the_look_ahead_stream_measures_exactly_what_process_does(threads, ahead) -> None:
    """``analyze`` estimates the next frames while this one is measured (process_stream, one
    frame ahead or, on single-threaded sessions, one per core at once); the results must be
    :meth:`process`'s, frame for frame and in order, on the calibrated sample camera."""
    camera = load_config(sample_config()).camera()
    with open_source(camera.source) as source:
        frames = list(sample_frames(source, every=7))[:14]
    estimator = make_estimator(EstimatorConfig(kind="density"), threads=threads)
    one_by_one = CameraAnalyzer(camera, estimator)
    expected = [one_by_one.process(frame) for frame in frames]
    streamed = list(CameraAnalyzer(camera, estimator).process_stream(iter(frames), ahead=ahead))
    assert len(streamed) == len(expected)
    for ours, theirs in zip(streamed, expected, strict=True):
        assert ours.frame.index == theirs.frame.index
        assert ours.estimate.count == theirs.estimate.count
        assert ours.zones == theirs.zones and ours.lines == theirs.lines
        assert ours.events == theirs.events
    assert any(z.mean_speed is not None for r in streamed for z in r.zones)


def test_a_frame_that_fails_to_read_ahead_is_raised_after_the_frames_before_it() -> None:
    camera = load_config(sample_config()).camera()
    with open_source(camera.source) as source:
        frames = list(sample_frames(source, every=11))[:6]

    def broken_after_four():
        yield from frames[:4]
        raise OSError("decoder lost the stream")

    analyzer = CameraAnalyzer(camera, make_estimator(EstimatorConfig(kind="density"), threads=1))
    seen = []
    with pytest.raises(OSError, match="decoder lost the stream"):
        for result in analyzer.process_stream(broken_after_four(), ahead=2):
            seen.append(result.frame.index)
    assert seen == [frame.index for frame in frames[:4]]


def test_look_ahead_plan_gives_a_core_per_frame_only_to_concurrent_estimators() -> None:
    assert look_ahead_plan(EstimatorConfig(kind="density"), cores=2) == (1, 2)
    assert look_ahead_plan(EstimatorConfig(kind="density"), cores=1) == (1, 1)
    assert look_ahead_plan(EstimatorConfig(kind="ssd"), cores=2) == (2, 1)


def test_privacy_blur_pixelates_people_in_the_video_and_alert_snapshots(tmp_path: Path) -> None:
    def run(folder: Path, blur: bool) -> Path:
        config = parse_config({
            "privacy": {"blur_people": blur},
            "estimator": {"kind": "ssd"},
            "cameras": [{
                "name": "plaza", "source": str(sample_video()),
                "zones": [{"name": "all", "polygon": [[0, 0], [768, 0], [768, 576], [0, 576]],
                           "alerts": [{"metric": "count", "latch_s": 0.0,
                                       "levels": {"warning": 1}}]}],
            }],
        })  # fmt: skip
        analyze(None, config, folder, AnalysisOptions(max_frames=3, progress=False))
        [snapshot] = (folder / "snapshots").glob("*.jpg")
        return snapshot

    plain = cv2.imread(str(run(tmp_path / "plain", False))).astype(np.int16)
    hidden = cv2.imread(str(run(tmp_path / "hidden", True))).astype(np.int16)
    with open_source(str(sample_video())) as source:
        frame = next(iter(sample_frames(source)))
    people = make_estimator(EstimatorConfig(kind="ssd")).estimate(frame.image)
    assert len(people.boxes) >= 3
    x1, y1, x2, y2 = (int(v) for v in people.boxes[0])
    person = (slice(y1, y2), slice(x1, x2))
    # Inside a person the pixelation differs from the plain frame and is smoother than it.
    assert np.abs(plain[person] - hidden[person]).mean() > 8
    assert (
        np.abs(hidden[person] - cv2.blur(hidden, (5, 5))[person]).mean()
        < np.abs(plain[person] - cv2.blur(plain, (5, 5))[person]).mean()
    )
    for name in ("plain", "hidden"):
        with open_source(str(tmp_path / name / "annotated.mp4")) as video:
            assert sum(1 for _ in sample_frames(video)) == 3
