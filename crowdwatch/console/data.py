"""What the console reads from and writes to the store, beyond the store's own methods.

Finding the store and the recording folder from the command line, the event configuration held
in the store, a camera's frame for drawing zones, and saving an edited camera back as a new
configuration version. No Streamlit here: plain functions the pages call and tests exercise.

Example:
    >>> store_target(["--store", "/tmp/x.db"], {})
    '/tmp/x.db'
    >>> store_target([], {"CROWDWATCH_STORE": "sqlite:///y.db"})
    'sqlite:///y.db'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from crowdwatch.config.schema import CameraConfig, EventConfig
from crowdwatch.console.pictures import Folders
from crowdwatch.errors import ConfigError
from crowdwatch.store import ConfigVersion, SqlStore

DEFAULT_STORE = "out/demo/crowdwatch.db"
STORE_ENV = "CROWDWATCH_STORE"
RECORDINGS_ENV = "CROWDWATCH_RECORDINGS"


def argument(argv: Sequence[str], name: str) -> str | None:
    """The value of ``--name VALUE`` or ``--name=VALUE`` among the arguments, else None.

    Example:
        >>> argument(["--store", "a.db", "--recordings=rec"], "recordings")
        'rec'
    """
    arguments = list(argv)
    flag = f"--{name}"
    for index, item in enumerate(arguments):
        if item == flag and index + 1 < len(arguments):
            return arguments[index + 1]
        if item.startswith(flag + "="):
            return item.removeprefix(flag + "=")
    return None


def store_target(argv: Sequence[str], environ: Mapping[str, str]) -> str:
    """The store to open: ``--store X`` among the arguments, else ``$CROWDWATCH_STORE``, else
    the demo's store ``out/demo/crowdwatch.db``."""
    return argument(argv, "store") or environ.get(STORE_ENV) or DEFAULT_STORE


def console_folders(store: SqlStore, argv: Sequence[str], environ: Mapping[str, str]) -> Folders:
    """Where the store's files are: alert snapshots beside a SQLite store (else the working
    folder); recordings in ``--recordings`` / ``$CROWDWATCH_RECORDINGS`` when given, else in
    ``recordings`` beside the store or the store's folder itself."""
    base = store.folder or Path.cwd()
    given = argument(argv, "recordings") or environ.get(RECORDINGS_ENV)
    candidates = [Path(given)] if given else []
    candidates += [base / "recordings", base, Path.cwd() / "recordings"]
    return Folders(store=base, recordings=tuple(dict.fromkeys(candidates)))


def event_config(store: SqlStore) -> EventConfig | None:
    """The event configuration of the store's latest config version, or None before any."""
    latest = store.latest_config()
    return None if latest is None else EventConfig.model_validate(latest.config)


def camera_names(store: SqlStore, config: EventConfig | None) -> list[str]:
    """Every camera the console knows: configured ones first, then any others with data."""
    names = [camera.name for camera in config.cameras] if config else []
    seen = set(names)
    for name in [health.camera for health in store.health()] + [
        sample.camera for sample in store.latest_metrics()
    ]:
        if name not in seen:
            names.append(name)
            seen.add(name)
    return names


def source_frame(camera: CameraConfig) -> np.ndarray | None:
    """The first frame of a camera's file source (to draw zones on), or None for streams."""
    source = camera.source
    if isinstance(source, int) or "://" in str(source) or not Path(str(source)).is_file():
        return None
    capture = cv2.VideoCapture(str(source))
    try:
        ok, image = capture.read()
        return image if ok else None
    finally:
        capture.release()


def replace_camera(config: EventConfig, camera: CameraConfig) -> EventConfig:
    """The config with the camera of the same name replaced (validated as a whole).

    Raises ``ConfigError`` naming the camera when the config has no such camera.
    """
    names = [existing.name for existing in config.cameras]
    if camera.name not in names:
        raise ConfigError(f"no camera named {camera.name!r} in the config (it has {names})")
    cameras = [camera if existing.name == camera.name else existing for existing in config.cameras]
    return EventConfig.model_validate({**config.model_dump(), "cameras": cameras})


def save_camera(
    store: SqlStore, config: EventConfig, camera: CameraConfig, author: str, note: str
) -> ConfigVersion:
    """Save ``config`` with ``camera`` replaced as the store's new configuration version.

    The running engine polls the store's latest version and applies it within seconds.
    """
    updated = replace_camera(config, camera)
    return store.save_config(updated.model_dump(mode="json"), author=author, note=note)
