"""Files an analysis run writes: metrics CSV, annotated video, alert snapshots, summary JSON.

Each writer flushes as it goes, so a run stopped by an error or Ctrl-C keeps what it recorded.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from crowdwatch.errors import CrowdwatchError
from crowdwatch.metrics.records import LineMetrics, ZoneMetrics

METRICS_COLUMNS = [
    "time_s",
    "frame_index",
    "camera",
    "zone",
    "count",
    "area_m2",
    "density",
    "occupancy",
    "level_of_service",
    "mean_speed",
    "flow_rate",
    "pressure",
    "rise_rate",
    "minutes_to_limit",
    "stalled",
    "level",
]
LINE_COLUMNS = [
    "time_s",
    "frame_index",
    "camera",
    "line",
    "length_m",
    "flow_in",
    "flow_out",
    "flow_rate",
    "crossed_in",
    "crossed_out",
    "level_of_service",
    "level",
]


class RecordsCsvWriter:
    """A CSV of metric records (one row per record), flushed after every frame.

    ``metrics.csv`` holds one row per analysed frame per zone, ``lines.csv`` one per line.
    """

    def __init__(self, path: Path, columns: Sequence[str] = tuple(METRICS_COLUMNS)) -> None:
        self.path = path
        self._file = path.open("w", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._file, fieldnames=list(columns), extrasaction="ignore")
        self._writer.writeheader()

    def write(self, records: Sequence[ZoneMetrics | LineMetrics]) -> None:
        self._writer.writerows(record.as_row() for record in records)
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class AnnotatedVideoWriter:
    """``annotated.mp4`` (MPEG-4 Part 2, which OpenCV's bundled FFmpeg can always encode)."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self.fps = fps
        self._writer: cv2.VideoWriter | None = None

    def write(self, image: np.ndarray) -> None:
        if self._writer is None:
            height, width = image.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (width, height))
            if not self._writer.isOpened():
                raise CrowdwatchError(f"cannot write video {self.path}")
        self._writer.write(image)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()


def save_snapshot(folder: Path, name: str, image: np.ndarray) -> Path:
    """Save a JPEG of an alert's frame; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.jpg"
    cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return path


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """Write JSON through a temporary file and a rename: never a half-written summary."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)
