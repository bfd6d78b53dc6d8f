"""The command line end to end on seconds of the real clip, and its answers to bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import yaml

from crowdwatch.alerts import read_alert_log
from crowdwatch.paths import sample_config


def crowdwatch(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "crowdwatch.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four seconds of the clip (every 2nd frame) with the bundled calibrated config."""
    out = tmp_path_factory.mktemp("run")
    result = crowdwatch(
        "analyze", str(sample_config().parent / "pets2009_s2l1.mp4"),
        "--config", str(sample_config()), "--out", str(out),
        "--every", "2", "--max-frames", "20", "--estimator", "ssd",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "done: 20 frames" in result.stdout
    return out


def test_analyze_writes_metrics_per_frame_and_zone(analysed: Path) -> None:
    with (analysed / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 20 * 2
    assert {row["zone"] for row in rows} == {"road", "crossing"}
    assert [int(row["frame_index"]) for row in rows[::2]] == list(range(0, 40, 2))
    road = [row for row in rows if row["zone"] == "road"]
    assert all(0 <= float(row["count"]) <= 12 for row in road)
    # Calibrated: the road zone's ground area is known, so density is in people per m².
    assert 100 < float(road[0]["area_m2"]) < 2000
    assert float(road[0]["density"]) == pytest.approx(
        float(road[0]["count"]) / float(road[0]["area_m2"]), rel=1e-3
    )
    assert {row["level"] for row in rows} <= {"normal", "advisory", "warning", "critical"}


def test_analyze_writes_a_playable_annotated_video(analysed: Path) -> None:
    capture = cv2.VideoCapture(str(analysed / "annotated.mp4"))
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == 20
    assert capture.get(cv2.CAP_PROP_FRAME_WIDTH) == 768
    # Every 2nd frame of a clip captured at 7 frames/s (the config corrects the file's 10).
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(3.5)


def test_analyze_summary(analysed: Path) -> None:
    summary = json.loads((analysed / "summary.json").read_text())
    assert summary["completed"] is True and summary["error"] is None
    assert summary["frames_analysed"] == 20 and summary["frames_in_source"] == 795
    assert summary["estimator"] == "ssd"
    assert summary["analysed_fps"] > 0 and summary["estimator_ms_per_frame"] > 0
    assert set(summary["zones"]) == {"road", "crossing"}
    assert summary["zones"]["road"]["peak_density"] > 0
    assert 2 <= summary["peak_count"] <= 12


def test_alerts_are_logged_with_snapshots(tmp_path: Path) -> None:
    config = yaml.safe_load(sample_config().read_text())
    road = config["cameras"][0]["zones"][0]
    road["alerts"] = [{"metric": "count", "latch_s": 0.5, "clear_latch_s": 0.5,
                       "levels": {"advisory": 2, "warning": 3}}]  # fmt: skip
    config["cameras"][0]["source"] = str(sample_config().parent / "pets2009_s2l1.mp4")
    config_path = tmp_path / "event.yaml"
    config_path.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    result = crowdwatch(
        "analyze", config["cameras"][0]["source"], "-c", str(config_path), "-o", str(out),
        "--max-frames", "30", "-e", "ssd", "--no-video",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not (out / "annotated.mp4").exists()
    records = read_alert_log(out / "alerts.jsonl")
    assert records, "a zone with 3+ people over a threshold of 2 must raise an alert"
    first = records[0]
    assert first["zone"] == "road" and first["level"] in {"advisory", "warning"}
    assert first["end_s"] >= first["start_s"] >= 0 and first["value"] >= 2
    assert (out / first["snapshot"]).is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert sum(summary["alerts_by_level"].values()) >= 1


def test_analyze_an_image_folder(clip_frames, tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, image in enumerate(clip_frames[:4]):
        cv2.imwrite(str(folder / f"{i:03d}.jpg"), image)
    result = crowdwatch("analyze", str(folder), "-o", str(tmp_path / "out"), "-e", "ssd")
    assert result.returncode == 0, result.stderr
    rows = (tmp_path / "out" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 and rows[1].split(",")[3] == "frame"


def test_count_prints_one_json_line_per_image(clip_frames, tmp_path: Path) -> None:
    paths = []
    for i in (0, 10):
        paths.append(tmp_path / f"f{i}.png")
        cv2.imwrite(str(paths[-1]), clip_frames[i])
    result = crowdwatch("count", *map(str, paths), "--json", "-e", "ssd")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["path"] for line in lines] == [str(p) for p in paths]
    assert all(1 <= line["count"] <= 12 for line in lines)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["analyze", "missing.mp4"], "error: video file not found: missing.mp4"),
        (["analyze", "rtsp://127.0.0.1:9/cam"], "error: cannot open stream rtsp://127.0.0.1:9/cam"),
        (["count", "nothing.jpg"], "error: image not found: nothing.jpg"),
        (["config", "check", "missing.yaml"], "error: config file not found: missing.yaml"),
        (["count", str(sample_config()), "-e", "yolo"], "error: the yolo estimator needs 'model'"),
    ],
)
def test_bad_input_gets_one_clear_line_and_exit_2(args, message, tmp_path: Path) -> None:
    result = crowdwatch(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(message)
    assert "Traceback" not in result.stderr


def test_unknown_estimator_is_refused_by_name() -> None:
    result = crowdwatch("count", "x.jpg", "-e", "magic")
    assert result.returncode == 2 and "Invalid value for '--estimator'" in result.stderr


def test_corrupt_video_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(5000))
    result = crowdwatch("analyze", str(broken), "-o", str(tmp_path / "out"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"error: cannot open video file {broken}" in result.stderr


def test_config_check_names_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "event.yaml"
    bad.write_text(
        yaml.safe_dump({
            "cameras": [{
                "name": "cam",
                "source": str(sample_config().parent / "pets2009_s2l1.mp4"),
                "zones": [
                    {"name": "off", "polygon": [[0, 0], [2000, 0], [2000, 50]]},
                    {"name": "ok", "polygon": [[0, 0], [50, 0], [50, 50]], "area_m2": 10,
                     "alerts": [{"metric": "density", "levels": {"warning": 5, "critical": 4}}]},
                ],
            }],
            "speling": 1,
        })
    )  # fmt: skip
    result = crowdwatch("config", "check", str(bad))
    assert result.returncode == 2
    assert "critical threshold 4 must be above warning threshold 5" in result.stderr
    assert "speling: unknown key" in result.stderr
    good = crowdwatch("config", "check", str(sample_config()))
    assert good.returncode == 0 and "OK (1 camera(s), 2 zone(s))" in good.stdout
    # Geometry is checked once the schema is valid: fix the thresholds and the typo.
    fixed = yaml.safe_load(bad.read_text())
    del fixed["speling"]
    fixed["cameras"][0]["zones"][1]["alerts"][0]["levels"] = {"warning": 4, "critical": 5}
    bad.write_text(yaml.safe_dump(fixed))
    result = crowdwatch("config", "check", str(bad))
    assert result.returncode == 2
    assert (
        "zone 'off': point(s) (2000, 0), (2000, 50) lie outside the 768x576 frame" in result.stderr
    )


def test_demo_runs_on_the_bundled_clip(tmp_path: Path) -> None:
    result = crowdwatch("demo", "--out", str(tmp_path / "demo"), "--every", "40", "-e", "ssd")
    assert result.returncode == 0, result.stderr
    assert "zone road" in result.stdout and "outputs:" in result.stdout
    assert json.loads((tmp_path / "demo" / "summary.json").read_text())["frames_analysed"] == 20


def test_eval_reports_mae_on_a_dataset_folder() -> None:
    from crowdwatch.evaluation.datasets import data_root

    folder = data_root() / "beijing_brt" / "train"
    if not folder.is_dir():
        pytest.skip(f"Beijing-BRT data not found at {folder}")
    result = crowdwatch("eval", "--dataset", "brt", str(folder), "--split", "val", "--limit", "3")
    assert result.returncode == 0, result.stderr
    assert (
        "brt: 3 images" in result.stdout and "MAE" in result.stdout and "ms/image" in result.stdout
    )
    missing = crowdwatch("eval", "--dataset", "pets", "/nonexistent")
    assert missing.returncode == 2 and "error: PETS layout expected" in missing.stderr
