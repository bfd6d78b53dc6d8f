"""OpenCV's thread pool is held to one thread while crowdwatch analyses."""

from __future__ import annotations

import cv2

from crowdwatch.config import default_config
from crowdwatch.paths import sample_video
from crowdwatch.pipeline import AnalysisOptions, analyze
from crowdwatch.pipeline.threads import OPENCV_THREADS, limit_opencv_threads


def test_analyze_runs_opencv_on_one_thread(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("CROWDWATCH_OPENCV_THREADS", raising=False)
    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(2)
        options = AnalysisOptions(max_frames=3, write_video=False, progress=False)
        analyze(sample_video(), default_config(str(sample_video())), tmp_path / "run", options)
        assert cv2.getNumThreads() == OPENCV_THREADS == 1
    finally:
        cv2.setNumThreads(before)


def test_the_environment_overrides_the_thread_count(monkeypatch) -> None:
    before = cv2.getNumThreads()
    try:
        monkeypatch.setenv("CROWDWATCH_OPENCV_THREADS", "2")
        assert limit_opencv_threads() == 2
        monkeypatch.setenv("CROWDWATCH_OPENCV_THREADS", "0")  # OpenCV's default
        assert limit_opencv_threads() >= 1
        monkeypatch.setenv("CROWDWATCH_OPENCV_THREADS", "many")  # not a number: the default
        assert limit_opencv_threads() == OPENCV_THREADS
    finally:
        cv2.setNumThreads(before)
