"""Where frames come from: files, image folders, streams, webcams."""

from crowdwatch.sources.sampling import sample_frames
from crowdwatch.sources.video import (
    ImageFolderSource,
    LiveSource,
    VideoFileSource,
    VideoSource,
    open_source,
    read_image,
)

__all__ = [
    "ImageFolderSource",
    "LiveSource",
    "VideoFileSource",
    "VideoSource",
    "open_source",
    "read_image",
    "sample_frames",
]
