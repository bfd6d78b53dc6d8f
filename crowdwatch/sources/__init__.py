"""Where frames come from: files, image folders, streams, webcams."""

from crowdwatch.sources.sampling import sample_frames
from crowdwatch.sources.video import (
    DeviceCrashed,
    ImageFolderSource,
    LiveSource,
    VideoFileSource,
    VideoSource,
    open_source,
    probe_device,
    read_image,
)

__all__ = [
    "DeviceCrashed",
    "ImageFolderSource",
    "LiveSource",
    "VideoFileSource",
    "VideoSource",
    "open_source",
    "probe_device",
    "read_image",
    "sample_frames",
]
