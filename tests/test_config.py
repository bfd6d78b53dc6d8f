"""Event configuration: the bundled example loads; every kind of mistake is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from crowdwatch.config import default_config, load_config, parse_config
from crowdwatch.errors import ConfigError
from crowdwatch.paths import sample_config, sample_video
from crowdwatch.pipeline.geometry import check_against_frames

SAMPLE_CLIP, SAMPLE_CONFIG = sample_video(), sample_config()


def _camera(**zone) -> dict:
    return {"cameras": [{"name": "cam", "source": str(SAMPLE_CLIP), "zones": [zone]}]}


def test_bundled_config_loads_and_resolves_its_clip() -> None:
    config = load_config(SAMPLE_CONFIG)
    camera = config.camera()
    assert Path(camera.source) == SAMPLE_CLIP
    assert [zone.name for zone in camera.zones] == ["road", "crossing"]
    assert camera.calibration is not None and len(camera.calibration.image_points) == 7
    assert check_against_frames(config) == []


def test_default_config_is_one_camera_without_zones() -> None:
    config = default_config("clip.mp4")
    assert config.camera().zones == [] and config.estimator.kind == "auto"


@pytest.mark.parametrize(
    ("zone", "message"),
    [
        ({"name": "z", "polygon": [[0, 0], [10, 10], [10, 0], [0, 10]]}, "self-intersecting"),
        ({"name": "z", "polygon": [[0, 0], [5, 5], [10, 10]]}, "no area|degenerate"),
        ({"name": "z", "polygon": [[0, 0], [10, 0]]}, "at least 3"),
        (
            {"name": "z", "polygon": [[0, 0], [9, 0], [9, 9]], "colour": "red"},
            "colour: unknown key",
        ),
        (
            {
                "name": "z",
                "polygon": [[0, 0], [9, 0], [9, 9]],
                "alerts": [{"metric": "density", "levels": {"advisory": 3, "warning": 2}}],
            },
            "warning threshold 2 must be above advisory threshold 3",
        ),
        (
            {
                "name": "z",
                "polygon": [[0, 0], [9, 0], [9, 9]],
                "alerts": [{"metric": "queue_length", "levels": {"warning": 2}}],
            },
            "metric",
        ),
    ],
)
def test_bad_zones_are_named(zone: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        parse_config(_camera(**zone))
    assert "cameras[0].zones[0]" in str(error.value)


def test_every_problem_is_listed_at_once() -> None:
    data = _camera(name="z", polygon=[[0, 0], [10, 10], [10, 0], [0, 10]])
    data["colour"] = "red"
    data["cameras"][0]["lens"] = "wide"
    with pytest.raises(ConfigError) as error:
        parse_config(data)
    text = str(error.value)
    assert "3 problem(s)" in text
    assert "colour: unknown key" in text and "cameras[0].lens: unknown key" in text


def test_duplicate_names_and_bad_calibration() -> None:
    zone = {"name": "z", "polygon": [[0, 0], [9, 0], [9, 9]]}
    with pytest.raises(ConfigError, match="duplicate zones"):
        parse_config({"cameras": [{"name": "c", "source": "x.mp4", "zones": [zone, zone]}]})
    with pytest.raises(ConfigError, match="duplicate camera names"):
        parse_config({"cameras": [{"name": "c", "source": 0}, {"name": "c", "source": 1}]})
    calibration = {"image_points": [[0, 0], [1, 0], [1, 1]], "ground_points": [[0, 0], [1, 0]]}
    with pytest.raises(ConfigError, match="must pair up"):
        parse_config({"cameras": [{"name": "c", "source": 0, "calibration": calibration}]})


def test_zone_outside_the_frame_is_reported_with_the_frame_size() -> None:
    config = parse_config(_camera(name="far", polygon=[[0, 0], [900, 0], [900, 100]]))
    problems = check_against_frames(config)
    assert problems == [
        "- cameras[0] (cam) zone 'far': point(s) (900, 0), (900, 100) lie outside the 768x576 frame"
    ]


def test_a_camera_that_cannot_be_opened_is_reported(tmp_path: Path) -> None:
    config = parse_config({"cameras": [{"name": "gone", "source": str(tmp_path / "x.mp4")}]})
    [problem] = check_against_frames(config)
    assert "gone" in problem and "not found" in problem


def test_malformed_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras:\n  - name: a\n    source: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML.*line"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "none.yaml")
    listing = tmp_path / "list.yaml"
    listing.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(listing)


def test_a_calibration_that_cannot_be_fitted_is_reported() -> None:
    camera = {
        "name": "cam",
        "source": str(SAMPLE_CLIP),
        "calibration": {
            "image_points": [[100, 300], [200, 300], [300, 300], [400, 300]],  # all on one line
            "ground_points": [[0, 0], [1, 0], [2, 1], [3, 5]],
        },
    }
    [problem] = check_against_frames(parse_config({"cameras": [camera]}))
    assert problem.startswith("- cameras[0] (cam) calibration:") and "line" in problem


def test_recording_settings_reach_the_recorder(tmp_path: Path) -> None:
    from crowdwatch.pipeline.outputs import recording_options
    from crowdwatch.recording import RecordingOptions

    data = _camera(name="z", polygon=[[0, 0], [99, 0], [99, 99]])
    data["recording"] = {"segment_s": 30, "quota_gb": 0.5, "preview_every_s": 0, "on_full": "stop"}
    data["privacy"] = {"blur_people": True}
    options = recording_options(parse_config(data), tmp_path, fps=2.0)
    assert (options.segment_s, options.quota_bytes, options.preview_every_s) == (30, 2**29, 0)
    assert options.on_full == "stop" and options.fps == 2.0
    plain = {"cameras": [{"name": "cam", "source": str(SAMPLE_CLIP)}]}
    defaults = recording_options(parse_config(plain), tmp_path, fps=2.0)
    assert defaults == RecordingOptions(tmp_path, fps=2.0)
    data["recording"] = {"quota_gb": -1, "on_full": "wrap", "segments": 3}
    with pytest.raises(ConfigError) as error:
        parse_config(data)
    text = str(error.value)
    assert "recording.quota_gb" in text and "recording.on_full" in text
    assert "recording.segments: unknown key" in text
