"""Choosing which frames of a long recording to analyse."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from crowdwatch.types import Frame


def sample_frames(
    frames: Iterable[Frame], every: int | None = None, fps: float | None = None
) -> Iterator[Frame]:
    """Keep every ``every``-th frame, or frames at most ``fps`` per second of source time.

    With neither set every frame is kept. ``fps`` uses the frames' own timestamps, so it works for
    files (video time) and live streams (wall time) alike.

    Example:
        >>> import numpy as np
        >>> frames = [Frame(np.zeros((1, 1, 3), np.uint8), i, i / 10) for i in range(10)]
        >>> [f.index for f in sample_frames(frames, fps=2.5)]
        [0, 4, 8]
    """
    if every is not None and every < 1:
        raise ValueError(f"--every must be at least 1, got {every}")
    if fps is not None and fps <= 0:
        raise ValueError(f"--fps must be positive, got {fps}")
    period = 1.0 / fps if fps is not None else 0.0
    next_time: float | None = None
    for position, frame in enumerate(frames):
        if every is not None and position % every:
            continue
        if fps is not None:
            # A small tolerance absorbs rounding in container timestamps.
            if next_time is not None and frame.time_s < next_time - 1e-6:
                continue
            # Stay on the fps grid, but never let a gap in the source cause a burst of frames.
            next_time = frame.time_s + period if next_time is None else next_time + period
            next_time = max(next_time, frame.time_s)
        yield frame
