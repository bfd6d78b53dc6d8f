"""What the console reads from and writes to the store, beyond the store's own methods.

Finding the store, the event configuration held in it, recorded pictures and video frames, and
saving an edited camera back as a new configuration version. No Streamlit here: these are plain
functions the pages call and the tests exercise directly.

Example:
    >>> store_target(["--store", "/tmp/x.db"], {})
    '/tmp/x.db'
    >>> store_target([], {"CROWDWATCH_STORE": "sqlite:///y.db"})
    'sqlite:///y.db'
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from crowdwatch.config.schema import CameraConfig, EventConfig
from crowdwatch.errors import ConfigError
from crowdwatch.store import ConfigVersion, RecordingEntry, SqlStore

DEFAULT_STORE = "out/demo/crowdwatch.db"
STORE_ENV = "CROWDWATCH_STORE"
RECORDINGS_ENV = "CROWDWATCH_RECORDINGS"
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def store_target(argv: Sequence[str], environ: Mapping[str, str]) -> str:
    """The store to open: ``--store X`` among the arguments, else ``$CROWDWATCH_STORE``, else
    the demo's store ``out/demo/crowdwatch.db``."""
    arguments = list(argv)
    for index, argument in enumerate(arguments):
        if argument == "--store" and index + 1 < len(arguments):
            return arguments[index + 1]
        if argument.startswith("--store="):
            return argument.removeprefix("--store=")
    return environ.get(STORE_ENV) or DEFAULT_STORE


def recording_root(store: SqlStore, environ: Mapping[str, str] | None = None) -> Path:
    """Where relative recording and snapshot paths start: ``$CROWDWATCH_RECORDINGS``, else the
    folder of a SQLite store's file (as the store writes them), else the working directory."""
    environ = os.environ if environ is None else environ
    if environ.get(RECORDINGS_ENV):
        return Path(environ[RECORDINGS_ENV])
    return store.folder or Path.cwd()


def resolve_path(root: Path, path: str) -> Path:
    """A recorded file's path: absolute as given, else under ``root``."""
    candidate = Path(path)
    return candidate if candidate.is_absolute() else root / candidate


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


def read_image(path: Path) -> np.ndarray | None:
    """A BGR image file, or None when it is missing or unreadable."""
    if path.suffix.lower() not in _IMAGE_SUFFIXES or not path.is_file():
        return None
    return cv2.imread(str(path), cv2.IMREAD_COLOR)


def frame_at(video: Path, offset_s: float) -> np.ndarray | None:
    """The frame shown ``offset_s`` seconds into a video file (clamped to its ends), or None."""
    capture = cv2.VideoCapture(str(video))
    try:
        if not capture.isOpened():
            return None
        fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if fps > 0 and frames > 0:
            index = int(np.clip(round(offset_s * fps), 0, frames - 1))
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, image = capture.read()
        return image if ok else None
    finally:
        capture.release()


def latest_picture(store: SqlStore, camera: str, root: Path) -> tuple[np.ndarray, float] | None:
    """The camera's newest recorded picture and its time: the latest heat-map snapshot or video
    segment frame, else the snapshot of its latest alert. None when nothing readable exists."""
    entries = store.recordings(camera)
    for entry in sorted(entries, key=lambda e: (e.end, e.kind == "snapshot"), reverse=True):
        picture = picture_of(entry, root, entry.end)
        if picture is not None:
            return picture, entry.end
    return latest_alert_snapshot(store, camera, root)


def latest_alert_snapshot(
    store: SqlStore, camera: str, root: Path, before: float | None = None
) -> tuple[np.ndarray, float] | None:
    """The annotated frame saved when the camera's latest alert (opened by ``before``) opened."""
    for alert in store.alerts(camera=camera, end=before, limit=50):
        if alert.snapshot:
            image = read_image(resolve_path(root, alert.snapshot))
            if image is not None:
                return image, alert.opened
    return None


def picture_of(entry: RecordingEntry, root: Path, time: float) -> np.ndarray | None:
    """The picture a recording shows at wall time ``time`` (a snapshot shows itself)."""
    if entry.status != "ok":
        return None
    path = resolve_path(root, entry.path)
    if entry.kind == "snapshot":
        return read_image(path)
    return frame_at(path, max(time - entry.start, 0.0))


def recording_at(
    entries: Sequence[RecordingEntry], time: float, slack_s: float = 1.0
) -> RecordingEntry | None:
    """The readable video segment that covers ``time`` (within ``slack_s``), else None."""
    covering = [
        entry
        for entry in entries
        if entry.kind == "segment"
        and entry.status == "ok"
        and entry.start - slack_s <= time <= entry.end + slack_s
    ]
    return covering[-1] if covering else None


def source_frame(camera: CameraConfig) -> np.ndarray | None:
    """One frame straight from a camera's file source (for drawing zones), or None."""
    source = camera.source
    if isinstance(source, int) or "://" in str(source) or not Path(str(source)).is_file():
        return None
    return frame_at(Path(str(source)), 0.0)


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
