"""Paths from the store stay inside their folder: replay, the console and the recorder's quota
clean-up refuse absolute paths and ``..``; an open store is served on loopback only."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from hostile import run_cli

from crowdwatch.console.auth import is_loopback, open_console_refusal
from crowdwatch.console.pictures import Folders
from crowdwatch.errors import UnsafePathError
from crowdwatch.paths import confined
from crowdwatch.recording import RecordingOptions, Replay
from crowdwatch.recording.recorder import CameraRecorder
from crowdwatch.store import RecordingEntry, open_store


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "../victim.mp4", "cam/../../victim.mp4", "", "C:\\x", "a/\x00b"]
)
def test_confined_refuses_paths_that_leave_the_root(tmp_path: Path, path: str) -> None:
    with pytest.raises(UnsafePathError):
        confined(tmp_path, path)


def test_confined_refuses_a_symlink_that_leads_out(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(UnsafePathError):
        confined(root, "link/victim.mp4")
    assert confined(root, "cam/a.mp4") == root / "cam" / "a.mp4"


def victims(tmp_path: Path) -> list[Path]:
    files = [tmp_path / "victim.mp4", tmp_path / "rec" / "other" / "victim.mp4"]
    for file in files:
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(b"precious" * 1000)
    return files


def hostile_rows(store, tmp_path: Path) -> None:
    now = time.time() - 3600
    for index, path in enumerate(
        [str(tmp_path / "victim.mp4"), "gate/../../victim.mp4", "other/victim.mp4"]
    ):
        store.add_recording(
            RecordingEntry("gate", "segment", now + index, now + index + 1, path, 10**9)
        )


def test_quota_clean_up_never_deletes_outside_the_cameras_folder(tmp_path: Path) -> None:
    files = victims(tmp_path)
    store = open_store(tmp_path / "store.db")
    hostile_rows(store, tmp_path)
    options = RecordingOptions(tmp_path / "rec", segment_s=0.5, quota_bytes=10_000, fps=4)
    recorder = CameraRecorder("gate", options, store)
    image = np.zeros((120, 160, 3), np.uint8)
    start = time.time()
    for index in range(8):
        recorder.add(image, start + index * 0.25, None)
    recorder.close()
    assert all(file.read_bytes() == b"precious" * 1000 for file in files)
    # The hostile rows were dropped from the index, so they no longer count against the quota.
    assert all(
        not entry.path.startswith(("/", "gate/..", "other")) for entry in store.recordings("gate")
    )
    store.close()


def test_replay_and_the_console_refuse_paths_outside_the_folder(tmp_path: Path) -> None:
    victims(tmp_path)
    store = open_store(tmp_path / "store.db")
    hostile_rows(store, tmp_path)
    replay = Replay(store, tmp_path / "rec", "gate", time.time() - 7200, time.time())
    assert list(replay) == []
    assert len([p for p in replay.problems if "refused" in p]) == 2
    folders = Folders(store=tmp_path, recordings=(tmp_path / "rec",))
    assert folders.recording(str(tmp_path / "victim.mp4")) is None
    assert folders.recording("gate/../../victim.mp4") is None
    assert folders.recording("other/victim.mp4") is not None  # inside the folder: served
    store.close()


def test_replay_command_renders_nothing_from_outside(capsys, tmp_path: Path) -> None:
    victims(tmp_path)
    store = open_store(tmp_path / "store.db")
    hostile_rows(store, tmp_path)
    store.close()
    outcome = run_cli(
        capsys, "replay", "gate", "--start", "-2h", "--store", tmp_path / "store.db",
        "--recordings", tmp_path / "rec", "--out", tmp_path / "replay.mp4",
    )  # fmt: skip
    assert outcome.clean and outcome.code == 2, outcome
    assert "refused" in outcome.err


@pytest.mark.parametrize(
    ("address", "loopback"),
    [("localhost", True), ("127.0.0.1", True), ("::1", True), ("[::1]", True),
     ("0.0.0.0", False), ("", False), (None, False), ("192.168.1.5", False), ("::", False)],
)  # fmt: skip
def test_loopback_addresses(address, loopback) -> None:
    assert is_loopback(address) is loopback


def test_open_store_is_served_on_loopback_only() -> None:
    assert open_console_refusal("127.0.0.1", None, allowed=False) is None
    assert open_console_refusal(None, "127.0.0.1", allowed=False) is None  # a local visitor
    assert "no users" in open_console_refusal(None, "10.0.0.7", allowed=False)
    assert "no users" in open_console_refusal("0.0.0.0", None, allowed=False)
    assert open_console_refusal("0.0.0.0", "10.0.0.7", allowed=True) is None


def test_console_command_refuses_an_open_store_on_every_interface(capsys, tmp_path) -> None:
    store = open_store(tmp_path / "open.db")
    store.close()
    outcome = run_cli(capsys, "console", "--store", tmp_path / "open.db", "--address", "0.0.0.0")
    assert outcome.code == 2 and outcome.clean and "no users" in outcome.error_lines[0]


def test_streamlit_app_refuses_an_open_store_to_a_remote_visitor(tmp_path, monkeypatch) -> None:
    from streamlit.testing.v1 import AppTest

    from crowdwatch.paths import REPO_ROOT

    store = open_store(tmp_path / "open.db")
    store.close()
    monkeypatch.delenv("CROWDWATCH_ALLOW_OPEN_CONSOLE", raising=False)
    monkeypatch.setenv("CROWDWATCH_STORE", str(tmp_path / "open.db"))
    app = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=60).run()
    assert any("no users" in error.value for error in app.error)
