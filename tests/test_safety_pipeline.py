"""Calibrated analysis end to end: people per m², motion, flow across lines, head-plane geometry."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from crowdwatch.calibration import GroundCalibration
from crowdwatch.calibration.raised import focal_length_px, raised_calibration
from crowdwatch.config import EstimatorConfig, load_config, parse_config
from crowdwatch.estimators import make_estimator
from crowdwatch.evaluation.datasets import data_root
from crowdwatch.paths import sample_config
from crowdwatch.pipeline import AnalysisOptions, analyze
from crowdwatch.pipeline.scene import build_scene
from crowdwatch.types import Anchor


def _pinhole(focal: float, tilt_deg: float, height_m: float, size=(800, 600)) -> np.ndarray:
    """3x4 projection of a camera ``height_m`` above the ground looking down at ``tilt_deg``."""
    tilt = np.radians(tilt_deg)
    # Camera axes in world coordinates: x right, y down the image, z forward.
    forward = np.array([0.0, np.cos(tilt), -np.sin(tilt)])
    right = np.array([1.0, 0.0, 0.0])
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])
    centre = np.array([0.0, 0.0, height_m])
    camera = np.array([[focal, 0, size[0] / 2], [0, focal, size[1] / 2], [0, 0, 1]])
    return camera @ np.column_stack([rotation, -rotation @ centre])


def _project(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    homogeneous = np.column_stack([points, np.ones(len(points))]) @ matrix.T
    return homogeneous[:, :2] / homogeneous[:, 2:]


def test_head_plane_from_a_ground_calibration_of_a_known_camera() -> None:
    camera = _pinhole(focal=900.0, tilt_deg=35.0, height_m=8.0)
    ground = np.array([[-6, 8, 0], [6, 8, 0], [6, 25, 0], [-6, 25, 0], [0, 15, 0.0]])
    calibration = GroundCalibration.from_points(_project(camera, ground), ground[:, :2])
    assert focal_length_px(calibration, 800, 600) == pytest.approx(900.0, rel=1e-3)
    heads = np.array([[-3.0, 10.0, 1.7], [4.0, 18.0, 1.7], [0.5, 22.0, 1.7]])
    pixels = _project(camera, heads)
    raised = raised_calibration(calibration, 1.7, 800, 600)
    assert np.allclose(raised.to_ground(pixels), heads[:, :2], atol=0.01)
    # Through the ground plane the same pixels land metres too far away.
    assert np.all(np.linalg.norm(calibration.to_ground(pixels) - heads[:, :2], axis=1) > 1.0)


def test_head_plane_places_real_pets_heads_above_their_feet() -> None:
    truth = data_root() / "pets2009_vtest" / "mot15_gt.txt"
    if not truth.is_file():
        pytest.skip(f"PETS ground truth not found at {truth}")
    rows = np.loadtxt(truth, delimiter=",")
    camera = load_config(sample_config()).camera()
    calibration = GroundCalibration.from_points(
        camera.calibration.image_points, camera.calibration.ground_points
    )
    tops = np.column_stack([rows[:, 2] + rows[:, 4] / 2, rows[:, 3]])
    raised = raised_calibration(calibration, camera.calibration.head_height_m, 768, 576)
    errors = np.linalg.norm(raised.to_ground(tops) - rows[:, 7:9], axis=1)
    # Box tops are the top of the head, a little above 1.7 m: measured median 0.39 m.
    assert np.nanmedian(errors) < 0.6
    assert np.nanmedian(np.linalg.norm(calibration.to_ground(tops) - rows[:, 7:9], axis=1)) > 5


def test_zones_and_lines_are_raised_for_head_estimators() -> None:
    camera = load_config(sample_config()).camera()
    feet = build_scene(camera, width=768, height=576, anchor=Anchor.FEET)
    heads = build_scene(camera, width=768, height=576, anchor=Anchor.HEAD)
    assert feet.zones[0].count_polygon is None
    raised = heads.zones[0].count_polygon
    assert raised is not None and raised.shape == feet.zones[0].polygon.shape
    # The head plane is higher in the image (smaller y) than the ground below it.
    assert np.all(raised[:, 1] < feet.zones[0].polygon[:, 1] + 1e-3)
    assert heads.zones[0].area_m2 == pytest.approx(feet.zones[0].area_m2)
    assert heads.lines[0].start != feet.lines[0].start


@pytest.fixture(scope="module")
def calibrated_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = yaml.safe_load(sample_config().read_text())
    camera = config["cameras"][0]
    camera["source"] = str(sample_config().parent / camera["source"])
    camera["lines"][0]["alerts"] = [
        {"metric": "flow_rate", "latch_s": 0.0, "clear_latch_s": 1.0, "levels": {"advisory": 0.5}}
    ]
    out = tmp_path_factory.mktemp("calibrated")
    estimator = make_estimator(EstimatorConfig(kind="ssd"))
    analyze(None, parse_config(config), out, AnalysisOptions(every=2, max_frames=60,
            progress=False), estimator=estimator)  # fmt: skip
    return out


def test_calibrated_zones_report_motion_and_trends(calibrated_run: Path) -> None:
    with (calibrated_run / "metrics.csv").open() as handle:
        rows = [row for row in csv.DictReader(handle) if row["zone"] == "road"]
    assert len(rows) == 60
    later = rows[10:]
    assert all(row["level_of_service"] in "ABCDEF" for row in rows)
    speeds = [float(row["mean_speed"]) for row in later]
    # People walk at about 1 m/s (the clip's timestamps run at 10/7 of real speed).
    assert 0.4 < float(np.median(speeds)) < 2.5
    assert all(float(row["pressure"]) >= 0 for row in later)
    assert all(row["rise_rate"] != "" for row in later)
    for row in later:
        assert float(row["flow_rate"]) == pytest.approx(
            float(row["density"]) * float(row["mean_speed"]) * 60, rel=1e-2, abs=1e-3
        )


def test_counting_line_flow_crossings_and_alerts(calibrated_run: Path) -> None:
    with (calibrated_run / "lines.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 59  # every analysed frame after the first
    assert {row["line"] for row in rows} == {"walkway"}
    assert float(rows[0]["length_m"]) == pytest.approx(10.51, abs=0.05)
    crossed = float(rows[-1]["crossed_in"]) + float(rows[-1]["crossed_out"])
    assert 0.5 < crossed < 10  # 12 s of a quiet plaza: a few people cross
    assert max(float(row["flow_rate"]) for row in rows) > 0.5
    summary = json.loads((calibrated_run / "summary.json").read_text())
    assert summary["lines"]["walkway"]["crossed_in"] == pytest.approx(float(rows[-1]["crossed_in"]))
    alerts = [
        json.loads(line) for line in (calibrated_run / "alerts.jsonl").read_text().splitlines()
    ]
    assert any(alert["zone"] == "walkway" and alert["metric"] == "flow_rate" for alert in alerts)


def test_birds_eye_picture_of_the_run(calibrated_run: Path) -> None:
    picture = cv2.imread(str(calibrated_run / "birdseye.png"))
    assert picture is not None and picture.shape[0] > 50 and picture.shape[1] > 50
