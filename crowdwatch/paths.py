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


def confined(root: str | os.PathLike[str], stored: str) -> Path:
    """The file ``stored`` (a path relative to ``root``, as the store's index keeps it) inside
    ``root``, refusing one that is absolute, climbs out with ``..``, or leads out through a
    symbolic link: whoever can write the store must not be able to make crowdwatch read or
    delete files elsewhere.

    Raises:
        UnsafePathError: naming the path and the folder it must stay in.

    Example:
        >>> confined("/rec", "cam/2024-01-01/120000-000.mp4").as_posix()
        '/rec/cam/2024-01-01/120000-000.mp4'
    """
    from pathlib import PurePosixPath, PureWindowsPath

    from crowdwatch.errors import UnsafePathError

    text = str(stored)
    posix, windows = PurePosixPath(text), PureWindowsPath(text)
    unsafe = (
        not text
        or "\x00" in text
        or posix.is_absolute()
        or windows.is_absolute()
        or bool(windows.drive)
        or ".." in posix.parts
        or ".." in windows.parts
    )
    base = Path(root)
    candidate = base / posix
    if not unsafe:
        try:
            candidate.resolve().relative_to(base.resolve())
        except (ValueError, OSError, RuntimeError):
            unsafe = True
    if unsafe:
        raise UnsafePathError(f"path {text!r} leads outside {base}: refused")
    return candidate
