"""``crowdwatch run``, ``status`` and ``replay`` end to end on the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from streams import small_clip

REPO = Path(__file__).resolve().parents[1]


def _crowdwatch(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENCV_LOG_LEVEL": "ERROR"}
    return subprocess.run(
        [sys.executable, "-m", "crowdwatch.cli", *args],
        capture_output=True, text=True, timeout=timeout_s, env=env, cwd=REPO,
    )  # fmt: skip


@pytest.fixture(scope="module")
def clip(sample_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_clip(sample_clip, tmp_path_factory.mktemp("clip") / "clip.mp4")


def test_run_records_then_status_and_replay_read_it_back(clip: Path, tmp_path: Path) -> None:
    config = tmp_path / "event.yaml"
    rule = {"metric": "count", "latch_s": 0, "levels": {"advisory": 0.5}}
    zone = {"name": "all", "polygon": [[0, 0], [384, 0], [384, 288], [0, 288]], "alerts": [rule]}
    config.write_text(
        yaml.safe_dump({"cameras": [{"name": "gate", "source": str(clip), "zones": [zone]}]})
    )
    store, recordings = tmp_path / "cw.db", tmp_path / "rec"
    ran = _crowdwatch(
        "run", str(config), "--store", str(store), "--record", str(recordings),
        "--segment-s", "2", "--duration", "6", "--status-every", "2", "--privacy-blur",
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "gate" in ran.stdout and "live" in ran.stdout and ran.stdout.endswith("stopped\n")

    (snapshot,) = (recordings / "gate" / "alerts").glob("*.jpg")  # the alert's frame, blurred
    assert snapshot.stat().st_size > 1000

    status = _crowdwatch("status", "--store", str(store))
    assert status.returncode == 0, status.stderr
    assert "gate" in status.stdout and "stopped" in status.stdout

    out = tmp_path / "replay.mp4"
    replayed = _crowdwatch(
        "replay", "gate", "--start", "-5m", "--store", str(store),
        "--recordings", str(recordings), "--out", str(out),
    )  # fmt: skip
    assert replayed.returncode == 0, replayed.stderr
    assert "wrote" in replayed.stdout and out.stat().st_size > 1000
    assert "1 alert(s)" in replayed.stdout

    nothing = _crowdwatch("replay", "gate", "--start", "-5m", "--end", "-4m", "--store", str(store))
    assert nothing.returncode == 2 and "no recorded frames of gate" in nothing.stderr
