"""The analysis pipeline: per-camera processing and whole-run orchestration."""

from crowdwatch.pipeline.analyze import AnalysisOptions, analyze
from crowdwatch.pipeline.camera import CameraAnalyzer, FrameResult

__all__ = ["AnalysisOptions", "CameraAnalyzer", "FrameResult", "analyze"]
