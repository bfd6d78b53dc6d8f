"""Where the bundled sample clip and its configuration live in a checkout."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def sample_videos_dir() -> Path:
    """``sample_videos/`` of the checkout, or ``$CROWDWATCH_SAMPLES``."""
    return Path(os.environ.get("CROWDWATCH_SAMPLES", REPO_ROOT / "sample_videos"))


def sample_video() -> Path:
    """The bundled PETS 2009 clip."""
    return sample_videos_dir() / "pets2009_s2l1.mp4"


def sample_config() -> Path:
    """The event configuration written for the bundled clip."""
    return sample_videos_dir() / "pets2009_s2l1.yaml"
