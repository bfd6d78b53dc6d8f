"""The console's latest picture from the recorder's live preview.

A real :class:`CameraRecorder` records real PETS frames into a real SQLite store's recording
folder, as the engine does mid-segment: two finished segments indexed, the third still open, and
the live preview refreshed every second. The live wall must show that preview while it is fresh
and newer than the last finished segment, and the segment when it is stale or gone.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from crowdwatch.config import load_config
from crowdwatch.console.charts import level_hex
from crowdwatch.console.data import console_folders
from crowdwatch.console.pictures import Folders, compose, live_preview, picture_at, raw_frame
from crowdwatch.recording import CameraRecorder, RecordingOptions
from crowdwatch.store import MetricSample, SqlStore, open_store

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "app.py"
CAMERA = load_config(REPO / "sample_videos" / "pets2009_s2l1.yaml").cameras[0]  # "plaza"
T0 = 1_760_000_000.0
FRAMES = 25  # one a second: segments T0..T0+9 and T0+10..T0+19 finished, T0+20.. still open
LAST = T0 + FRAMES - 1
# A point on the road zone's top edge, from (0, 190) to (768, 120).
ROAD_EDGE = (155, 384)


def _blob(people: float, x: int) -> np.ndarray:
    """A heat map (people per pixel) of ``people`` in one blob at column ``x``."""
    heat = np.zeros((576, 768), np.float32)
    heat[400, x] = people
    return cv2.GaussianBlur(heat, (0, 0), 12)


def _bgr(level: str) -> np.ndarray:
    red, green, blue = bytes.fromhex(level_hex(level)[1:])
    return np.array([blue, green, red], float)


@pytest.fixture
def recorded(tmp_path: Path, clip_frames: list[np.ndarray]):
    """A store and its folders with ``FRAMES`` frames recorded, the recorder still running."""
    store = open_store(tmp_path / "crowdwatch.db")
    options = RecordingOptions(tmp_path / "recordings", segment_s=10, snapshot_every_s=10)
    recorder = CameraRecorder(CAMERA.name, options, store)
    for i, image in enumerate(clip_frames[:FRAMES]):
        recorder.add(image, T0 + i, _blob(i + 1, 100 + 20 * i))
    # The road turned critical after the last finished segment.
    store.write_metrics(
        [
            MetricSample(CAMERA.name, "road", T0 + 10, {"count": 3.0}, level="normal"),
            MetricSample(CAMERA.name, "road", T0 + 22, {"count": 9.0}, level="critical"),
        ]
    )
    yield store, console_folders(store, [], {}), recorder
    recorder.close()
    store.close()


def test_the_latest_picture_is_the_fresh_live_preview(
    recorded: tuple[SqlStore, Folders, CameraRecorder],
) -> None:
    store, folders, _ = recorded
    assert [s.end - T0 for s in store.recordings(CAMERA.name, kind="segment")] == [9.0, 19.0]
    picture = picture_at(store, CAMERA.name, folders, config=CAMERA, now=LAST + 2)
    assert picture is not None and picture.caption == "live" and picture.time == LAST
    assert picture.image.shape == (576, 768, 3)
    # Composed as recorded frames are: the road in the colour of its level at that moment,
    # the header strip, and the preview's own heat map (frame 24: 25 people), not the
    # snapshot taken at T0 + 20 (21 people elsewhere).
    assert np.abs(picture.image[ROAD_EDGE] - _bgr("critical")).max() <= 2
    assert np.abs(picture.image[2, 700].astype(float) - 20).max() <= 2
    image, heat, when = live_preview(CAMERA.name, folders, now=LAST + 2)
    assert when == LAST and float(heat.astype(np.float64).sum()) == pytest.approx(25, rel=0.01)
    own_heat = compose(
        store, CAMERA.name, folders, image, when, CAMERA, heat=heat, full_size=(576, 768),
        heat_note="fading",  # the recorder's preview heat is the engine's fading map
    )  # fmt: skip
    snapshot_heat = compose(store, CAMERA.name, folders, image, when, CAMERA)
    assert np.array_equal(picture.image, own_heat)
    assert not np.array_equal(picture.image, snapshot_heat)


def test_a_stale_or_missing_preview_gives_way_to_the_last_segment(
    recorded: tuple[SqlStore, Folders, CameraRecorder],
) -> None:
    store, folders, _ = recorded
    assert live_preview(CAMERA.name, folders, now=LAST + 10) is not None
    assert live_preview(CAMERA.name, folders, now=LAST + 10.5) is None
    assert live_preview(CAMERA.name, folders, max_age_s=60, now=LAST + 30) is not None

    stale = picture_at(store, CAMERA.name, folders, config=CAMERA, now=LAST + 11)
    assert stale is not None and stale.caption == "recording" and stale.time == T0 + 19
    assert np.abs(stale.image[ROAD_EDGE] - _bgr("normal")).max() <= 2  # the level then
    (folders.recordings[0] / CAMERA.name / "live.json").unlink()
    gone = picture_at(store, CAMERA.name, folders, config=CAMERA, now=LAST + 1)
    assert gone is not None and gone.caption == "recording" and gone.time == T0 + 19
    # An asked-for moment is always the recording, fresh preview or not.
    assert picture_at(store, CAMERA.name, folders, when=T0 + 5).caption == "recording"


def test_a_preview_no_newer_than_the_last_segment_is_not_preferred(
    recorded: tuple[SqlStore, Folders, CameraRecorder],
) -> None:
    store, folders, recorder = recorded
    recorder.close()  # the open segment is finished and indexed: it ends with the preview
    picture = picture_at(store, CAMERA.name, folders, now=LAST + 1)
    assert picture is not None and picture.caption == "recording" and picture.time == LAST


def test_zones_are_drawn_on_the_fresh_preview_else_on_the_last_segment(
    recorded: tuple[SqlStore, Folders, CameraRecorder], clip_frames: list[np.ndarray]
) -> None:
    store, folders, _ = recorded
    fresh = raw_frame(store, CAMERA.name, folders, now=LAST + 1)
    last = clip_frames[FRAMES - 1].astype(float)
    assert fresh is not None and fresh.shape == (576, 768, 3)
    assert np.abs(fresh - last).mean() < 4  # the newest frame, through JPEG
    stale = raw_frame(store, CAMERA.name, folders, now=LAST + 60)
    assert stale is not None
    # The finished segment ends at frame 19: the older view, not the newest frame.
    assert np.abs(stale - clip_frames[19].astype(float)).mean() < np.abs(stale - last).mean()


@pytest.mark.parametrize("preview_every_s", [1.0, 0.0])
def test_the_live_wall_shows_the_preview_before_any_segment_is_finished(
    tmp_path: Path,
    clip_frames: list[np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
    preview_every_s: float,
) -> None:
    with open_store(tmp_path / "crowdwatch.db") as store:
        options = RecordingOptions(tmp_path / "recordings", preview_every_s=preview_every_s)
        recorder = CameraRecorder("gate", options, store)
        now = time.time()
        for i, image in enumerate(clip_frames[:3]):
            recorder.add(image, now - 2 + i, _blob(5, 300))
        store.write_metrics([MetricSample("gate", "all", now, {"count": 5.0})])
        monkeypatch.setenv("CROWDWATCH_STORE", str(tmp_path / "crowdwatch.db"))
        app = AppTest.from_file(str(APP), default_timeout=60)
        app.query_params["page"] = "live"
        app.run()
        recorder.close()
    assert not app.exception, [e.value for e in app.exception]
    waiting = any("No picture recorded" in message.value for message in app.info)
    if preview_every_s:
        assert len(app.image) == 1 and not waiting
    else:
        assert not app.image and waiting
