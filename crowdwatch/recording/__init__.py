"""Recording: video segments and heat-map snapshots per camera, a disk quota, privacy blur and
replay of a time range with its heat maps, metrics and alerts."""

from crowdwatch.recording.privacy import blur_people, people_mask
from crowdwatch.recording.recorder import CameraRecorder, RecordingOptions, shrink_heat
from crowdwatch.recording.replay import (
    Overview,
    Replay,
    ReplayFrame,
    load_heat,
    recording_overview,
    replay_frames,
)

__all__ = [
    "CameraRecorder",
    "Overview",
    "RecordingOptions",
    "Replay",
    "ReplayFrame",
    "blur_people",
    "load_heat",
    "people_mask",
    "recording_overview",
    "replay_frames",
    "shrink_heat",
]
