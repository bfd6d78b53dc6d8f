"""Frame sources on real video, and the errors bad input gets."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from crowdwatch.errors import SourceError
from crowdwatch.sources import ImageFolderSource, open_source, sample_frames
from crowdwatch.types import Frame


def test_video_file_yields_every_frame_with_video_time(sample_clip: Path) -> None:
    with open_source(sample_clip) as source:
        assert source.fps == pytest.approx(10.0)
        assert source.frame_count == 795
        frames = list(source)
    assert len(frames) == 795
    assert frames[0].image.shape == (576, 768, 3)
    assert frames[10].time_s == pytest.approx(1.0)
    assert [f.index for f in frames[:3]] == [0, 1, 2]


def test_a_recordings_true_frame_rate_replaces_the_containers(sample_clip: Path) -> None:
    # PETS 2009 was captured at about 7 frames per second; its container says 10.
    with open_source(sample_clip, file_fps=7.0) as source:
        assert source.fps == 7.0
        seventh = [f for f in sample_frames(source, fps=1.0)][:3]
    assert [f.index for f in seventh] == [0, 7, 14]
    assert seventh[1].time_s == pytest.approx(1.0)


def test_sampling_by_step_and_by_rate(sample_clip: Path) -> None:
    with open_source(sample_clip) as source:
        every_5 = [f.index for f in sample_frames(source, every=5)]
    assert len(every_5) == 159 and every_5[:3] == [0, 5, 10]
    frames = [Frame(np.zeros((2, 2, 3), np.uint8), i, i / 10) for i in range(100)]
    two_fps = [f.index for f in sample_frames(frames, fps=2.0)]
    assert two_fps[:4] == [0, 5, 10, 15] and len(two_fps) == 20


def test_sampling_rejects_nonsense_rates() -> None:
    with pytest.raises(ValueError, match="--fps"):
        list(sample_frames([], fps=0))
    with pytest.raises(ValueError, match="--every"):
        list(sample_frames([], every=0))


def test_missing_empty_and_corrupt_videos_are_named(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not found"):
        open_source(tmp_path / "nope.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(SourceError, match="empty"):
        open_source(empty)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 255, 20000, np.uint8).tobytes())
    with pytest.raises(SourceError, match="corrupt"):
        open_source(corrupt)


def test_truncated_video_yields_what_it_has(sample_clip: Path, tmp_path: Path) -> None:
    # An AVI written frame by frame and cut in half: the first half still decodes.
    full = tmp_path / "full.avi"
    writer = cv2.VideoWriter(str(full), cv2.VideoWriter_fourcc(*"MJPG"), 10, (768, 576))
    with open_source(sample_clip) as source:
        for frame in sample_frames(source, every=40):
            writer.write(frame.image)
    writer.release()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with open_source(cut) as source:
        frames = list(source)
    assert 3 <= len(frames) < 20


def test_image_folder_in_natural_order_skipping_unreadable(clip_frames, tmp_path: Path) -> None:
    for i in (10, 2, 1):
        cv2.imwrite(str(tmp_path / f"img_{i}.jpg"), clip_frames[i])
    (tmp_path / "img_5.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "notes.txt").write_text("ignored")
    source = open_source(tmp_path, image_fps=2.0)
    assert isinstance(source, ImageFolderSource)
    frames = list(source)
    assert [Path(f.source).name for f in frames] == ["img_1.jpg", "img_2.jpg", "img_10.jpg"]
    assert frames[2].time_s == pytest.approx(1.0)


def test_folder_without_images_and_single_image_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no images"):
        open_source(tmp_path)
    image = tmp_path / "one.jpg"
    cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(SourceError, match="crowdwatch count"):
        open_source(image)


def test_unreachable_stream_fails_fast_with_its_url() -> None:
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"rtsp://127\.0\.0\.1:9/cam"):
        open_source("rtsp://127.0.0.1:9/cam")
    assert time.monotonic() - started < 15


def test_stream_passwords_never_reach_names() -> None:
    from crowdwatch.sources.video import _redact

    assert _redact("rtsp://admin:secret@10.0.0.5/live") == "rtsp://admin:***@10.0.0.5/live"
