"""Shared fixtures: the bundled real clip, real frames from it, the shared ground truth."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE_CLIP = REPO / "sample_videos" / "pets2009_s2l1.mp4"
SAMPLE_CONFIG = REPO / "sample_videos" / "pets2009_s2l1.yaml"
DATA = Path(os.environ.get("CROWDWATCH_DATA", REPO.parent / "shared" / "data"))

# Keep ultralytics offline and its settings out of the home folder.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "False")
# Streamlit's AppTest serves no network (its visitor address is a mock): let the page tests
# open user-less stores; tests of the refusal itself remove this.
os.environ.setdefault("CROWDWATCH_ALLOW_OPEN_CONSOLE", "1")


@pytest.fixture(scope="session", autouse=True)
def _yolo_config_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ.setdefault("YOLO_CONFIG_DIR", str(tmp_path_factory.mktemp("ultralytics")))


@pytest.fixture(scope="session")
def sample_clip() -> Path:
    return SAMPLE_CLIP


@pytest.fixture(scope="session")
def clip_frames() -> list[np.ndarray]:
    """Every 20th frame of the bundled clip (40 real frames)."""
    capture = cv2.VideoCapture(str(SAMPLE_CLIP))
    frames, index = [], 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        if index % 20 == 0:
            frames.append(image)
        index += 1
    capture.release()
    return frames


@pytest.fixture(scope="session")
def pets_counts() -> dict[int, int]:
    """Ground-truth people per video frame of the PETS clip (skips when the data is absent)."""
    path = DATA / "pets2009_vtest" / "vtest_counts.csv"
    if not path.is_file():
        pytest.skip(f"shared data not found at {path}")
    counts = {}
    for line in path.read_text().splitlines()[1:]:
        fields = line.split(",")
        counts[int(fields[0])] = int(fields[2])
    return counts
