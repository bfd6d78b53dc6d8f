"""Hostile and careless input: one ``error:`` line naming the problem and exit 2, never a
traceback; limits on sizes; runs that end early say so."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import pytest
import yaml
from hostile import clip_excerpt, png_declaring, run_cli

from crowdwatch.config import load as config_load
from crowdwatch.config import load_config
from crowdwatch.errors import ConfigError, SourceError
from crowdwatch.paths import sample_config, sample_video
from crowdwatch.sources import open_source, read_image
from crowdwatch.sources import video as video_module


def sample() -> dict:
    data = yaml.safe_load(sample_config().read_text())
    data["cameras"][0]["source"] = str(sample_video())
    return data


def write(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def check(capsys, path: Path, *extra: str):
    return run_cli(capsys, "config", "check", path, "--offline", *extra)


# --- command-line usage -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--every", "0"], "--every"),
        (["--max-frames", "-1"], "--max-frames"),
        (["--max-frames", "abc"], "--max-frames"),
        (["--fps", "0"], "--fps"),
        (["--bogus"], "--bogus"),
    ],
)
def test_bad_options_are_one_error_line_not_a_click_box(capsys, tmp_path, args, named) -> None:
    outcome = run_cli(capsys, "analyze", sample_video(), "--out", tmp_path / "o", *args)
    assert outcome.code == 2 and outcome.clean, outcome
    assert named in outcome.error_lines[0]
    assert "╭" not in outcome.out + outcome.err


def test_help_and_no_arguments_exit_0(capsys) -> None:
    assert run_cli(capsys, "--help").code == 0
    assert run_cli(capsys).code == 0


def test_out_that_is_a_file_or_under_proc(capsys, tmp_path) -> None:
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    for out in (a_file, Path("/proc/crowdwatch-out")):
        outcome = run_cli(capsys, "analyze", sample_video(), "--out", out, "-e", "ssd")
        assert outcome.code == 2 and outcome.clean, outcome
        assert str(out) in outcome.error_lines[0]


# --- config files -------------------------------------------------------------------------


def test_yaml_nested_1000_deep_is_refused(capsys, tmp_path) -> None:
    for depth in (1000, 60):
        path = write(tmp_path / f"deep{depth}.yaml", "a: " + "[" * depth + "]" * depth + "\n")
        outcome = check(capsys, path)
        assert outcome.code == 2 and outcome.clean, outcome
        assert "nest" in outcome.error_lines[0]


def test_yaml_alias_bomb_is_refused(capsys, tmp_path) -> None:
    text = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n"
    for level in range(1, 10):
        text += f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]\n"
    started = time.monotonic()
    outcome = check(capsys, write(tmp_path / "bomb.yaml", text))
    assert outcome.code == 2 and outcome.clean and "aliases" in outcome.error_lines[0]
    assert time.monotonic() - started < 10


def test_config_size_limit_and_c_loader(capsys, tmp_path, monkeypatch) -> None:
    import yaml as pyyaml

    if hasattr(pyyaml, "CSafeLoader"):
        assert config_load._YAML_LOADER is pyyaml.CSafeLoader
    monkeypatch.setattr(config_load, "MAX_CONFIG_BYTES", 1000)
    path = write(tmp_path / "big.yaml", sample())
    outcome = check(capsys, path)
    assert outcome.code == 2 and outcome.clean and "MB" in outcome.error_lines[0]


def test_config_that_is_a_folder_or_binary(capsys, tmp_path) -> None:
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    for path in (tmp_path, binary):
        outcome = check(capsys, path)
        assert outcome.code == 2 and outcome.clean, outcome


def test_huge_ground_points_are_named(capsys, tmp_path) -> None:
    data = sample()
    data["cameras"][0]["calibration"]["ground_points"][0] = [1e200, 1e200]
    outcome = check(capsys, write(tmp_path / "c.yaml", data))
    assert outcome.code == 2 and outcome.clean
    assert "calibration.ground_points[0]" in outcome.out + outcome.err
    assert "overflow" not in outcome.out + outcome.err


def test_polygon_at_1e300_is_named_and_analyze_writes_a_finite_summary(capsys, tmp_path) -> None:
    data = sample()
    data["cameras"][0]["zones"][1]["polygon"] = [[0, 0], [1e300, 0], [1e300, 1e300]]
    path = write(tmp_path / "c.yaml", data)
    outcome = check(capsys, path)
    assert outcome.code == 2 and outcome.clean
    assert "zones[1].polygon" in outcome.out + outcome.err
    outcome = run_cli(capsys, "analyze", sample_video(), "-c", path, "--out", tmp_path / "o")
    assert outcome.code == 2 and outcome.clean
    assert "zones[1].polygon" in outcome.out + outcome.err


def test_summary_json_is_finite(tmp_path) -> None:
    from crowdwatch.outputs import RunSummary

    summary = RunSummary(source="s", camera="c", estimator="e")
    summary.mean_count = float("nan")
    summary.peak_count = float("inf")
    text = json.dumps(summary.to_dict(), allow_nan=False)
    assert json.loads(text)["peak_count"] is None


def test_polygon_above_the_horizon_names_the_zone(capsys, tmp_path) -> None:
    data = {
        "cameras": [
            {
                "name": "gate",
                "source": "missing.mp4",
                "frame_size": [768, 576],
                # Converging edges: the horizon runs across the frame at about y = 223.
                "calibration": {
                    "rectangle": [[300, 300], [468, 300], [768, 576], [0, 576]],
                    "width_m": 5,
                    "depth_m": 20,
                },
                "zones": [{"name": "skyline", "polygon": [[0, 0], [768, 0], [768, 400], [0, 400]]}],
            }
        ]
    }
    outcome = run_cli(capsys, "config", "check", write(tmp_path / "c.yaml", data))
    assert outcome.code == 2 and outcome.clean, outcome
    assert "'skyline'" in outcome.out + outcome.err and "horizon" in outcome.out + outcome.err


@pytest.mark.parametrize("tiles", [[0, 0], [100000, 1], [-1, 2]])
def test_tiles_out_of_range(capsys, tmp_path, tiles) -> None:
    data = sample()
    data["estimator"]["tiles"] = tiles
    outcome = check(capsys, write(tmp_path / "c.yaml", data))
    assert outcome.code == 2 and outcome.clean and "estimator.tiles" in outcome.out + outcome.err


def test_two_thousand_zones_and_a_100000_point_polygon_are_refused_quickly(
    capsys, tmp_path
) -> None:
    import math

    data = sample()
    data["cameras"][0]["zones"] = [
        {"name": f"z{i}", "polygon": [[1, 1], [5, 1], [5, 5]], "capacity": 5} for i in range(2000)
    ]
    zones = write(tmp_path / "zones.yaml", json.dumps(data))  # JSON is YAML, and quick to write
    data = sample()
    ring = [[300 + 200 * math.cos(t / 1e5 * 6.283), 300 + 200 * math.sin(t / 1e5 * 6.283)]
            for t in range(100_000)]  # fmt: skip
    data["cameras"][0]["zones"][1]["polygon"] = ring
    points = write(tmp_path / "points.yaml", json.dumps(data))
    started = time.monotonic()
    outcome = check(capsys, zones)
    assert outcome.code == 2 and outcome.clean and "zones" in outcome.out + outcome.err
    outcome = check(capsys, points)  # 3.8 MB: over the config size limit
    assert outcome.code == 2 and outcome.clean and "MB limit" in outcome.error_lines[0]
    assert time.monotonic() - started < 10  # 22 s for the polygon alone before
    # Compact (1 MB) it is read, and refused by the maximum of points per polygon.
    data["cameras"][0]["zones"][1]["polygon"] = [[int(x), int(y)] for x, y in ring]
    outcome = check(capsys, write(tmp_path / "compact.yaml", json.dumps(data)))
    assert outcome.code == 2 and outcome.clean and "polygon" in outcome.out + outcome.err


@pytest.mark.parametrize(
    ("change", "named", "missing"),
    [
        (lambda cam: cam.pop("calibration"), "'road'", "area"),
        (
            lambda cam: cam["zones"][1]["alerts"].append(
                {"metric": "occupancy", "levels": {"warning": 0.9}}
            ),
            "'crossing'",
            "capacity",
        ),
        (
            lambda cam: (cam.pop("calibration"), cam["zones"].clear()),
            "'walkway'",
            "calibration",
        ),
    ],
)
def test_rules_that_can_never_fire_are_errors(capsys, tmp_path, change, named, missing) -> None:
    data = sample()
    change(data["cameras"][0])
    outcome = check(capsys, write(tmp_path / "c.yaml", data))
    assert outcome.code == 2 and outcome.clean, outcome
    text = outcome.out + outcome.err
    assert named in text and missing in text


@pytest.mark.parametrize("source", [-1, 64, 100000, "-1", True, ""])
def test_invalid_device_indices_are_refused_at_validation(capsys, tmp_path, source) -> None:
    data = sample()
    data["cameras"][0]["source"] = source
    outcome = check(capsys, write(tmp_path / "c.yaml", data))
    assert outcome.code == 2 and outcome.clean, outcome
    assert "cameras[0].source" in outcome.out + outcome.err


def test_sample_config_still_passes(capsys) -> None:
    outcome = check(capsys, sample_config())
    assert outcome.code == 0 and "OK" in outcome.out


# --- media ---------------------------------------------------------------------------------


def test_folder_of_unreadable_images_is_an_error(capsys, tmp_path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(3):
        (folder / f"{index}.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "o"
    outcome = run_cli(capsys, "analyze", folder, "--out", out, "-e", "ssd")
    assert outcome.code == 2 and outcome.clean, outcome
    assert str(folder) in outcome.error_lines[0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["completed"] is False and "could be read" in summary["error"]


def test_png_declaring_20000x20000_is_refused_before_decoding(capsys, tmp_path) -> None:
    bomb = png_declaring(tmp_path / "bomb.png", 20000, 20000)
    with pytest.raises(SourceError, match="20000x20000"):
        read_image(bomb)
    outcome = run_cli(capsys, "count", bomb, "-e", "ssd")
    assert outcome.code == 2 and outcome.clean and "million pixel" in outcome.error_lines[0]


def test_video_frames_over_the_pixel_limit_are_refused(monkeypatch) -> None:
    monkeypatch.setattr(video_module, "MAX_PIXELS", 100 * 100)
    with pytest.raises(SourceError, match="million pixel limit"):
        open_source(sample_video())


def test_truncated_video_is_not_completed(capsys, tmp_path) -> None:
    excerpt = clip_excerpt(sample_video(), tmp_path / "excerpt.mp4")
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(excerpt.read_bytes()[: excerpt.stat().st_size * 2 // 3])
    out = tmp_path / "o"
    outcome = run_cli(
        capsys, "analyze", truncated, "--out", out, "-e", "ssd", "--every", "25", "--no-video"
    )
    assert outcome.code == 2 and outcome.clean, outcome
    assert "ended early" in outcome.error_lines[0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["completed"] is False and "ended early" in summary["error"]
    assert summary["frames_analysed"] > 0


def test_video_corrupt_in_the_middle_is_not_completed(capsys, tmp_path) -> None:
    excerpt = clip_excerpt(sample_video(), tmp_path / "excerpt.mp4")
    data = bytearray(excerpt.read_bytes())
    middle = len(data) // 2
    for i in range(middle, middle + 300_000):
        data[i] = (i * 7919) % 256
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(bytes(data))
    out = tmp_path / "o"
    outcome = run_cli(
        capsys, "analyze", corrupt, "--out", out, "-e", "ssd", "--every", "25", "--no-video"
    )
    assert outcome.code == 2 and outcome.clean, outcome
    summary = json.loads((out / "summary.json").read_text())
    assert summary["completed"] is False and "ended early" in summary["error"]


def test_whole_clip_is_still_completed(tmp_path) -> None:
    with open_source(sample_video()) as source:
        frames = sum(1 for _ in source)
        assert source.ended_early is None and frames == source.frame_count


def test_source_that_cannot_open_still_gets_a_summary(capsys, tmp_path) -> None:
    out = tmp_path / "o"
    outcome = run_cli(capsys, "analyze", tmp_path / "missing.mp4", "--out", out)
    assert outcome.code == 2 and outcome.clean
    summary = json.loads((out / "summary.json").read_text())
    assert summary["completed"] is False and "not found" in summary["error"]


# --- store targets ---------------------------------------------------------------------------


def store_targets(tmp_path: Path) -> list[str]:
    folder = tmp_path / "folder.db"
    folder.mkdir()
    notadb = tmp_path / "notadb.db"
    notadb.write_text("this is not a database\n" * 100)
    return [str(folder), str(notadb), "foo://bar", "postgresql://u:p@127.0.0.1:1/x"]


@pytest.mark.parametrize("command", ["status", "user", "run", "analyze"])
def test_bad_store_targets_are_one_error_line(capsys, tmp_path, command) -> None:
    config = write(tmp_path / "c.yaml", sample())
    for index, target in enumerate(store_targets(tmp_path)):
        args = {
            "status": ["status", "--store", target],
            "user": ["user", "bob", "--store", target],
            "run": ["run", config, "--store", target, "--duration", "1"],
            "analyze": ["analyze", sample_video(), "-c", config, "--out", tmp_path / f"o{index}",
                        "--store", target, "-e", "ssd", "--max-frames", "1"],
        }[command]  # fmt: skip
        outcome = run_cli(capsys, *args)
        assert outcome.code == 2 and outcome.clean, (target, outcome)
        shown = target.replace(":p@", ":***@")
        assert shown in outcome.error_lines[0] or target in outcome.error_lines[0], outcome


def test_config_errors_are_crowdwatch_errors(tmp_path) -> None:
    with pytest.raises(ConfigError):
        load_config(write(tmp_path / "c.yaml", copy.deepcopy({"cameras": []})))
