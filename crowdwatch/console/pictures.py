"""Pictures for the console: a camera's recorded frame at a moment, with its heat map, zone
outlines in their alert colours and the moment's counts, from what the engine recorded.

The recorder writes raw video segments (frame times in a ``.times.json`` beside each) and
heat-map snapshots (``.heat.npz``), indexed in the store by time, with paths relative to the
recording folder. Alert snapshots are annotated JPEGs with paths relative to the store's folder.
A store filled by ``crowdwatch analyze`` has only alert snapshots; they are used when no
recording covers the moment.

Segments are indexed only when finished (a minute by default), so for the latest picture the
recorder's live preview (``<recordings>/<camera>/live.*``, refreshed every second, not indexed)
is preferred while it is fresh.
"""

from __future__ import annotations

import bisect
import functools
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from crowdwatch.annotate import draw_header, draw_heatmap, draw_zones
from crowdwatch.config.scaling import camera_for_frames
from crowdwatch.config.schema import CameraConfig
from crowdwatch.console.levels import Situation
from crowdwatch.errors import UnsafePathError
from crowdwatch.metrics import ZoneMetrics
from crowdwatch.paths import confined
from crowdwatch.recording.recorder import (
    LIVE_HEAT,
    LIVE_IMAGE,
    LIVE_INFO,
    density_path_of,
    load_segment_density,
    times_path_of,
)
from crowdwatch.recording.replay import load_heat_with_shape
from crowdwatch.store import MetricSample, RecordingEntry, SqlStore, StoredAlert
from crowdwatch.types import Level
from crowdwatch.zones import Zone

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# How far back a heat-map snapshot or a zone's sample may lie and still describe a moment.
HEAT_HORIZON_S = 60.0
METRICS_HORIZON_S = 60.0
# A live preview older than this is from a stopped engine or camera, not live.
LIVE_MAX_AGE_S = 10.0
#: Heat of a replayed frame: ``now`` (the people of that moment, recovered from the two
#: fading snapshots around it) or ``fading`` (where it has been crowded, as the engine drew it).
HEAT_MODES: tuple[str, ...] = ("now", "fading")
# The "now" heat of a frame comes from a snapshot at most this far from it.
NOW_MAX_OFFSET_S = 3.0
# The fixed colour scale of :func:`draw_heatmap` (people per blob of 1/40th of the frame).
PEOPLE_SCALE = 0.35


@dataclass(frozen=True)
class Folders:
    """Where the store's relative file paths start.

    ``store`` holds alert snapshots (SQLite: the store file's folder); ``recordings`` are the
    candidate recording folders, tried in order (``--recordings``, then ``recordings`` beside
    the store, then the store's folder itself).
    """

    store: Path
    recordings: tuple[Path, ...]

    def alert_snapshot(self, path: str) -> Path:
        """The file of an alert snapshot path."""
        return _under(self.store, path)

    def recording(self, path: str) -> Path | None:
        """The file of a recording index path, or None when no candidate folder has it."""
        for root in self.recordings:
            try:
                candidate = confined(root, path)
            except UnsafePathError:
                return None  # absolute or outside the recording folders: never served
            if candidate.exists():
                return candidate
        return None


@dataclass(frozen=True)
class Picture:
    """A picture of a camera at ``time`` (epoch seconds), with a caption saying what it is."""

    image: np.ndarray
    time: float
    caption: str


@dataclass(frozen=True)
class _LivePreview:
    """The recorder's live preview: the frame, its reduced heat map and the analysed frame's
    size (from the heat file; None without one), taken at ``time``."""

    image: np.ndarray
    heat: np.ndarray | None
    time: float
    full_size: tuple[int, int] | None


def read_image(path: Path) -> np.ndarray | None:
    """A BGR image file, or None when it is missing or unreadable."""
    if path.suffix.lower() not in _IMAGE_SUFFIXES or not path.is_file():
        return None
    return cv2.imread(str(path), cv2.IMREAD_COLOR)


def segment_frame(
    path: Path, entry: RecordingEntry, when: float
) -> tuple[np.ndarray, float] | None:
    """The segment's frame shown at wall time ``when`` and that frame's own time.

    Uses the recorder's frame times when present; otherwise spreads the frames evenly over the
    entry's time span. Decoded frames are cached (a finished segment never changes), so walls
    refreshing every second or two decode each camera's latest frame once.
    """
    return _decoded(str(path), entry.start, entry.end, when)


@functools.lru_cache(maxsize=128)
def _decoded(
    path_text: str, start: float, end: float, when: float
) -> tuple[np.ndarray, float] | None:
    path = Path(path_text)
    times = _frame_times(path)
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            return None
        frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if not times:
            span = max(end - start, 1e-9)
            times = [start + span * i / max(frames - 1, 1) for i in range(max(frames, 1))]
        index = int(np.clip(bisect.bisect_right(times, when) - 1, 0, len(times) - 1))
        if frames:
            index = min(index, frames - 1)
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, image = capture.read()
        return (image, times[index]) if ok and image is not None else None
    finally:
        capture.release()


def live_preview(
    camera: str, folders: Folders, max_age_s: float = LIVE_MAX_AGE_S, now: float | None = None
) -> tuple[np.ndarray, np.ndarray | None, float] | None:
    """The camera's live preview as (frame, reduced heat map or None, time), or None when no
    recording folder holds one taken within ``max_age_s`` of ``now`` (None: the clock).

    Example:
        >>> live_preview("gate", Folders(Path("."), (Path("nowhere"),))) is None
        True
    """
    live = _fresh_live_preview(camera, folders, max_age_s, now)
    return None if live is None else (live.image, live.heat, live.time)


def picture_at(
    store: SqlStore,
    camera: str,
    folders: Folders,
    when: float | None = None,
    config: CameraConfig | None = None,
    slack_s: float = 1.0,
    live_max_age_s: float = LIVE_MAX_AGE_S,
    now: float | None = None,
    levels: Mapping[str, str] | None = None,
    heat_mode: str = "now",
    half_life_s: float = 3.0,
) -> Picture | None:
    """The camera at ``when`` (None: its latest picture): the recorded frame with the heat
    map, zones and counts of that moment, else the latest alert snapshot before it.

    ``levels`` (zone -> level) colours the zone outlines; None: the levels of that moment
    (:meth:`Situation.at`), so that outlines agree with the badge, table and alert bar.
    ``heat_mode`` picks the heat of a recorded frame (see :data:`HEAT_MODES`; ``half_life_s``
    is the engine's heat-map half-life, needed to recover ``now``).

    For the latest picture a live preview no older than ``live_max_age_s`` (at ``now``; None:
    the clock) and newer than the last finished segment wins, captioned ``live``.
    """
    segments = store.recordings(camera, kind="segment")
    segment = _segment_for(segments, when, slack_s)
    if when is None:
        live = _fresh_live_preview(camera, folders, live_max_age_s, now)
        if live is not None and (segment is None or live.time > segment.end):
            image = compose(
                store, camera, folders, live.image, live.time, config,
                heat=live.heat, full_size=live.full_size, levels=levels,
                heat_note="fading" if live.heat is not None else "",
            )  # fmt: skip
            return Picture(image, live.time, "live")
    if segment is not None:
        file = folders.recording(segment.path)
        moment = segment.end if when is None else when
        frame = segment_frame(file, segment, moment) if file is not None else None
        if frame is not None:
            heat, full_size, note = heat_of(
                store, camera, folders, frame[1], heat_mode, half_life_s
            )
            image = compose(
                store, camera, folders, frame[0], frame[1], config, levels=levels,
                heat=heat, full_size=full_size, heat_note=note,
            )  # fmt: skip
            return Picture(image, frame[1], "recording")
    return alert_snapshot(store, camera, folders, before=when)


def raw_frame(
    store: SqlStore, camera: str, folders: Folders, now: float | None = None
) -> np.ndarray | None:
    """The camera's latest recorded frame as it was filmed (for drawing zones on): the live
    preview while it is fresh at ``now`` (None: the clock), so a camera just moved shows its
    new view, else the last finished segment's last frame."""
    live = _fresh_live_preview(camera, folders, LIVE_MAX_AGE_S, now)
    if live is not None:
        return live.image
    segment = _segment_for(store.recordings(camera, kind="segment"), None, 0.0)
    file = folders.recording(segment.path) if segment is not None else None
    frame = segment_frame(file, segment, segment.end) if file is not None else None
    return frame[0] if frame is not None else None


def alert_snapshot(
    store: SqlStore,
    camera: str,
    folders: Folders,
    before: float | None = None,
    after: float | None = None,
) -> Picture | None:
    """The annotated frame saved when an alert of the camera opened: the latest one opened by
    ``before``, or with ``after`` the first one opened from then on."""
    if after is None:
        alerts = store.alerts(camera=camera, end=before, limit=50)
    else:
        alerts = sorted(store.alerts(camera=camera, start=after), key=lambda a: a.opened)
        alerts = [alert for alert in alerts if alert.opened >= after][:50]
    for alert in alerts:
        if alert.snapshot:
            image = read_image(folders.alert_snapshot(alert.snapshot))
            if image is not None:
                note = f"ALERT {alert.zone} {alert.level.upper()}"
                image = restamp(image, camera, alert.opened, note)
                return Picture(image, alert.opened, f"alert snapshot ({alert.zone} {alert.level})")
    return None


def compose(
    store: SqlStore,
    camera: str,
    folders: Folders,
    image: np.ndarray,
    when: float,
    config: CameraConfig | None = None,
    opacity: float = 0.6,
    heat: np.ndarray | None = None,
    full_size: tuple[int, int] | None = None,
    levels: Mapping[str, str] | None = None,
    heat_note: str | None = None,
) -> np.ndarray:
    """A recorded frame drawn as the engine annotates live frames: the heat map of the moment
    ``when``, zones in their alert colours with counts, and a line with the time and alerts.

    ``heat`` (a reduced heat map of that very frame, from an analysed frame of ``full_size``)
    replaces the nearest heat-map snapshot, which may be seconds older.
    """
    if heat is None and heat_note is None:
        heat, _, full_size = _heat_at(store, camera, folders, when)
    metrics = _metrics_at(store, camera, when)
    alerts = [a for a in store.alerts(camera=camera, start=when, end=when) if _open_at(a, when)]
    if levels is None:
        moment = Situation.of(metrics, alerts)
        levels = {zone: level for (_, zone), level in moment.targets.items()}
    picture = image.copy()
    if heat is not None:
        shown = _heat_for(heat, picture.shape[:2])
        picture = draw_heatmap(picture, shown, opacity, people_scale=contrast_scale(shown))
    if config is not None and config.zones:
        shown = _camera_on_picture(config, picture, full_size)
        _draw_zone_levels(picture, shown, metrics, levels)
    text = f"{camera}  {readable_time(when)}" + (
        f"  heat: {heat_note.split(' (')[0]}" if heat_note else ""
    )
    if alerts:
        text += "  ALERTS: " + ", ".join(f"{a.zone} {a.level}" for a in alerts)
    return draw_header(picture, text)


def contrast_scale(heat: np.ndarray, floor: float = PEOPLE_SCALE) -> float:
    """The ``people_scale`` for :func:`draw_heatmap` that keeps a dense scene's contrast: the
    fixed scale of a sparse scene, raised so that the densest blob (99.5th percentile of the
    display blur) reaches the top of the colour map instead of the whole frame saturating.

    Example:
        >>> sparse = np.zeros((80, 80), np.float32); sparse[40, 40] = 1.0
        >>> contrast_scale(sparse)
        0.35
        >>> contrast_scale(np.full((80, 80), 0.05, np.float32)) > 1.0
        True
    """
    height, width = heat.shape[:2]
    sigma = max(height, width) / 80
    small = cv2.resize(heat.astype(np.float32), (max(8, width // 4), max(8, height // 4)),
                       interpolation=cv2.INTER_AREA) * 16  # fmt: skip
    blurred = cv2.GaussianBlur(small, (0, 0), max(sigma / 4, 0.5)) / 16
    top = float(np.percentile(blurred, 99.5))
    return max(floor, top * 2 * np.pi * sigma**2)


def heat_of(
    store: SqlStore,
    camera: str,
    folders: Folders,
    when: float,
    mode: str = "now",
    half_life_s: float = 3.0,
) -> tuple[np.ndarray | None, tuple[int, int] | None, str]:
    """The heat map to draw over the recorded frame at ``when``, its frame size, and a label.

    ``fading``: the engine's heat map (an average that fades with ``half_life_s``), from the
    last snapshot by ``when``; it trails moving people. ``now``: the recorded frame's own density
    (kept per frame with each segment); for recordings without it, the density of the moment
    recovered from the snapshot nearest ``when`` (H2, at most :data:`NOW_MAX_OFFSET_S` away)
    and the one before it (H1, ``dt`` earlier): ``(H2 - k·H1) / (1 - k)`` with
    ``k = 0.5 ** (dt / half_life_s)`` is the mean density of the frames between them,
    weighted to the last. No heat (and a label saying so) when no snapshot is near enough.
    """
    if mode not in HEAT_MODES:
        raise ValueError(f"unknown heat mode {mode!r}; expected one of {HEAT_MODES}")
    if mode == "fading":
        heat, taken, size = _heat_at(store, camera, folders, when)
        if heat is None:
            return None, None, "none recorded"
        return heat, size, f"fading (where it has been crowded, {when - taken:.0f} s old)"
    own = _frame_density(store, camera, folders, when)
    if own is not None:
        return own[0], own[1], "now (people in this frame)"
    snapshots = [
        entry
        for entry in store.recordings(
            camera, when - HEAT_HORIZON_S, when + NOW_MAX_OFFSET_S, kind="snapshot"
        )
        if entry.status == "ok"
    ]
    snapshots.sort(key=lambda entry: entry.start)
    near = [e for e in snapshots if abs(e.start - when) <= NOW_MAX_OFFSET_S]
    if not near:
        return None, None, "now: no snapshot near this frame"
    latest = min(near, key=lambda entry: abs(entry.start - when))
    loaded = _load_snapshot(folders, latest)
    if loaded is None:
        return None, None, "now: snapshot unreadable"
    heat, size = loaded
    earlier = [e for e in snapshots if e.start < latest.start]
    previous = _load_snapshot(folders, earlier[-1]) if earlier else None
    if previous is not None and previous[0].shape == heat.shape:
        keep = 0.5 ** ((latest.start - earlier[-1].start) / half_life_s)
        heat = np.clip((heat - keep * previous[0]) / max(1.0 - keep, 1e-3), 0.0, None)
    return heat, size, "now (people in this frame)"


def _frame_density(
    store: SqlStore, camera: str, folders: Folders, when: float
) -> tuple[np.ndarray, tuple[int, int]] | None:
    """The density the analysis saw in the recorded frame nearest ``when`` (within 1 s)."""
    for entry in store.recordings(camera, when - 1.0, when + 1.0, kind="segment"):
        file = folders.recording(entry.path)
        if file is None:
            continue
        found = load_segment_density(density_path_of(file), when)
        if found is not None:
            return found[0], found[1]
    return None


def _load_snapshot(
    folders: Folders, entry: RecordingEntry
) -> tuple[np.ndarray, tuple[int, int] | None] | None:
    file = folders.recording(entry.path)
    if file is None or file.suffix != ".npz":
        return None
    return load_heat_with_shape(file)


def _heat_for(heat: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A reduced heat snapshot at the picture's size, keeping its total (people per pixel)."""
    height, width = shape
    if heat.shape == (height, width):
        return heat
    scale = (heat.shape[0] * heat.shape[1]) / (height * width)
    return cv2.resize(heat, (width, height), interpolation=cv2.INTER_LINEAR) * scale


def _segment_for(
    segments: Sequence[RecordingEntry], when: float | None, slack_s: float
) -> RecordingEntry | None:
    readable = [entry for entry in segments if entry.status == "ok"]
    if when is None:
        return readable[-1] if readable else None
    covering = [e for e in readable if e.start - slack_s <= when <= e.end + slack_s]
    return covering[-1] if covering else None


def _heat_at(
    store: SqlStore, camera: str, folders: Folders, when: float
) -> tuple[np.ndarray | None, float | None, tuple[int, int] | None]:
    snapshots = store.recordings(camera, when - HEAT_HORIZON_S, when, kind="snapshot")
    for entry in reversed([s for s in snapshots if s.start <= when and s.status == "ok"]):
        file = folders.recording(entry.path)
        loaded = load_heat_with_shape(file) if file is not None and file.suffix == ".npz" else None
        if loaded is not None:
            return loaded[0], entry.start, loaded[1]
    return None, None, None


def _fresh_live_preview(
    camera: str, folders: Folders, max_age_s: float, now: float | None
) -> _LivePreview | None:
    """The newest live preview of the camera in any recording folder, when fresh enough."""
    now = time.time() if now is None else now
    # Only the times are read for every folder; images only for the newest fresh preview.
    times = [(_live_preview_time(root / camera), root / camera) for root in folders.recordings]
    fresh = sorted(
        ((when, folder) for when, folder in times if when is not None and now - when <= max_age_s),
        key=lambda item: item[0],
        reverse=True,
    )
    for when, folder in fresh:
        preview = _read_live_preview(folder, when)
        if preview is not None:
            return preview
    return None


def _live_preview_time(folder: Path) -> float | None:
    try:
        return float(json.loads((folder / LIVE_INFO).read_text("utf-8"))["time"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _read_live_preview(folder: Path, when: float) -> _LivePreview | None:
    # Read after the time: the recorder writes the time last, so the image is as new or newer.
    image = read_image(folder / LIVE_IMAGE)
    if image is None:
        return None
    heat_file = folder / LIVE_HEAT
    loaded = load_heat_with_shape(heat_file) if heat_file.is_file() else None
    heat, full_size = loaded if loaded is not None else (None, None)
    return _LivePreview(image, heat, when, full_size)


def _metrics_at(store: SqlStore, camera: str, when: float) -> list[MetricSample]:
    newest: dict[tuple[str, str], MetricSample] = {}
    for sample in store.metrics(camera, start=when - METRICS_HORIZON_S, end=when):
        newest[(sample.kind, sample.zone)] = sample
    return list(newest.values())


def at_frame_size(image: np.ndarray, config: CameraConfig) -> np.ndarray:
    """The picture at the camera's ``frame_size``, the pixels its zones, lines and calibration
    are drawn in (a recording may be of a substream, or scaled down); unchanged without one."""
    if config.frame_size is None or tuple(config.frame_size) == (image.shape[1], image.shape[0]):
        return image
    return cv2.resize(image, tuple(config.frame_size), interpolation=cv2.INTER_LINEAR)


def _camera_on_picture(
    config: CameraConfig, picture: np.ndarray, full_size: tuple[int, int] | None
) -> CameraConfig:
    """The camera with its coordinates in the picture's pixels. They are drawn in its
    ``frame_size`` pixels (the main stream, even when a substream was analysed and recorded),
    else in the analysed frames' (``full_size``, height and width; the recording may be
    smaller)."""
    drawn = config
    if config.frame_size is None and full_size is not None:
        drawn = config.model_copy(update={"frame_size": (full_size[1], full_size[0])})
    return camera_for_frames(drawn, width=picture.shape[1], height=picture.shape[0])


def _draw_zone_levels(
    image: np.ndarray,
    config: CameraConfig,
    metrics: list[MetricSample],
    levels: Mapping[str, str],
) -> None:
    zones = [Zone(z.name, np.asarray(z.polygon, np.float32)) for z in config.zones]
    records = [
        ZoneMetrics(
            camera=s.camera,
            zone=s.zone,
            frame_index=s.frame_index or 0,
            time_s=s.time,
            count=s.value("count") or 0.0,
            area_m2=s.value("area_m2"),
            density=s.value("density"),
            occupancy=s.value("occupancy"),
            level=Level.from_name(levels.get(s.zone, s.level)),
        )
        for s in metrics
        if s.kind == "zone"
    ]
    draw_zones(image, zones, records)


def readable_time(epoch: float) -> str:
    """A moment as the console writes it everywhere: ``2026-11-30 14:02:11 UTC``."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def restamp(image: np.ndarray, camera: str, when: float, note: str = "") -> np.ndarray:
    """An alert snapshot with its header (the engine writes stream seconds there, e.g.
    ``t=1796156554.9s``) redrawn with a readable time."""
    text = f"{camera}  {readable_time(when)}" + (f"  {note}" if note else "")
    return draw_header(image.copy(), text)


def _frame_times(path: Path) -> list[float] | None:
    try:
        return [float(t) for t in json.loads(times_path_of(path).read_text("utf-8"))]
    except (OSError, ValueError):
        return None


def _open_at(alert: StoredAlert, when: float) -> bool:
    return alert.opened <= when and (alert.closed is None or alert.closed >= when)


def _under(root: Path, path: str) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else root / candidate
