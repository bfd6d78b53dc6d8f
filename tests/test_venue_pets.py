"""Two overlapping cameras whose truth is known: the bundled PETS 2009 clip cut into two crops.

The left crop (x 0-480 px) and the right crop (x 288-768 px) are two cameras, each with its own
calibration in the same ground frame (the sample config's MOT15 ground metres). The shipped
density model runs on each crop and on the uncropped frame; the crops' ground grids are fused on
the venue grid. A venue zone across both crops must count what the single uncropped camera
counts (within 5 %), and the 192 px overlap must not be counted twice.

A crop keeps the full frame's camera, whose principal point is the *full* frame's centre, not
the crop's. ``build_scene`` assumes the principal point at the frame centre when it raises the
ground calibration to the plane of heads, so for a crop the people plane is the full frame's
head plane shifted by the crop offset (:meth:`GroundCalibration.cropped`), which is exact.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from shapely.geometry import box as shapely_box

from crowdwatch.calibration import GroundDensityMapper
from crowdwatch.config.schema import CameraConfig
from crowdwatch.estimators import make_estimator
from crowdwatch.pipeline.scene import build_scene
from crowdwatch.types import Anchor
from crowdwatch.venue import (
    CameraGround,
    CameraView,
    VenueConfig,
    VenueFusion,
    measure_zone,
    venue_grid,
    venue_problems,
    zone_count,
    zone_mask,
    zone_status,
)

SAMPLE_CONFIG = Path(__file__).resolve().parents[1] / "sample_videos" / "pets2009_s2l1.yaml"
WIDTH, HEIGHT = 768, 576
CROPS = {"left": (0, 480), "right": (288, 768)}
ZONE_M = [(-16.0, -12.0), (-5.0, -12.0), (-5.0, -1.0), (-16.0, -1.0)]


def _camera_configs() -> tuple[CameraConfig, dict[str, CameraConfig]]:
    """The uncropped camera and the two crops, each calibrated in the same ground frame."""
    plaza = yaml.safe_load(SAMPLE_CONFIG.read_text())["cameras"][0]
    full = CameraConfig(name="plaza", source="x.mp4", calibration=plaza["calibration"])
    ground = build_scene(full, width=WIDTH, height=HEIGHT, anchor=Anchor.FEET).calibration
    crops = {}
    for name, (x0, x1) in CROPS.items():
        width = x1 - x0
        # Calibration points spread over the crop; their ground points are where the sample
        # calibration puts those pixels (MOT15 metres): the crop's own calibration.
        image = np.array([[0.1, 0.45], [0.9, 0.4], [0.95, 0.9], [0.05, 0.85], [0.5, 0.6]]) * [
            width,
            HEIGHT,
        ]
        points = ground.to_ground(image + [x0, 0])
        calibration = {"image_points": image.tolist(), "ground_points": points.tolist()}
        crops[name] = CameraConfig(name=name, source="x.mp4", calibration=calibration)
    return full, crops


@pytest.fixture(scope="module")
def pets_venue():
    full_config, crop_configs = _camera_configs()
    full = build_scene(full_config, width=WIDTH, height=HEIGHT, anchor=Anchor.HEAD)
    mappers = {"plaza": full.mapper}
    for name, (x0, x1) in CROPS.items():
        scene = build_scene(crop_configs[name], width=x1 - x0, height=HEIGHT, anchor=Anchor.HEAD)
        # The crop's ground calibration matches the full frame's, shifted (checked here) ...
        probe = np.array([[20.0, 300.0], [400.0, 500.0]])
        assert np.allclose(
            scene.calibration.to_ground(probe),
            full.calibration.cropped(x0, 0).to_ground(probe),
            atol=1e-3,
        )
        # ... and its head plane is the full frame's head plane, shifted (see module docs).
        mappers[name] = GroundDensityMapper(full.people_plane.cropped(x0, 0), (x1 - x0, HEIGHT))
    venue = VenueConfig(name="pets", cell_m=0.2, zones=[{"name": "plaza", "polygon_m": ZONE_M}])
    grid = venue_grid(venue.bounds_m(), venue.cell_m)
    views = {
        name: CameraView.from_calibration(name, m.calibration, *m.image_size, grid)
        for name, m in mappers.items()
    }
    return venue, grid, mappers, views


def test_a_zone_across_two_cropped_cameras_counts_what_the_uncropped_camera_counts(
    pets_venue, clip_frames
) -> None:
    venue, grid, mappers, views = pets_venue
    mask = zone_mask(grid, "plaza", ZONE_M)
    share = {
        n: mask.covered_area_m2(v.covers, grid.cell_m) / mask.area_m2 for n, v in views.items()
    }
    assert share["plaza"] > 0.95
    assert 0.5 < share["left"] < 0.9 and 0.5 < share["right"] < 0.9  # it lies across both crops
    pair = VenueFusion(grid, [views["left"], views["right"]])
    single = VenueFusion(grid, [views["plaza"]])
    estimator = make_estimator()
    fused_counts, single_counts, naive_counts = [], [], []
    for image in clip_frames[::4]:  # 10 real frames
        frames = {}
        for name, mapper in mappers.items():
            x0, x1 = CROPS.get(name, (0, WIDTH))
            density = estimator.estimate(np.ascontiguousarray(image[:, x0:x1])).density
            # What FrameResult.ground_m2 carries: people/m² on the camera's own ground grid.
            frames[name] = CameraGround(mapper.grid, mapper.ground_grid(density))
        crops = {n: frames[n] for n in CROPS}
        fused = pair.fuse(crops, live={"left", "right"})
        measure = measure_zone(fused, mask)
        assert measure.covered_fraction == pytest.approx(share["plaza"], abs=0.01)
        fused_counts.append(measure.count)
        single_counts.append(zone_count(single.fuse({"plaza": frames["plaza"]}), mask))
        naive = pair.naive_sum(crops)[mask.rows, mask.columns]
        naive_counts.append(float((naive * mask.share).sum() * grid.cell_m**2))
    fused_total, single_total, naive_total = map(sum, (fused_counts, single_counts, naive_counts))
    assert single_total > 10  # people were there to count
    assert fused_total == pytest.approx(single_total, rel=0.05)
    # The overlap counted twice: the naive sum is clearly higher.
    assert naive_total > 1.25 * single_total
    assert naive_total > 1.25 * fused_total
    # Frame by frame the fused count follows the single camera's.
    assert np.mean(np.abs(np.subtract(fused_counts, single_counts))) < 0.4
    print(f"fused {fused_total:.2f}  single {single_total:.2f}  naive {naive_total:.2f}")


def test_the_zone_goes_unknown_when_the_crops_stop(pets_venue, clip_frames) -> None:
    venue, grid, mappers, views = pets_venue
    mask = zone_mask(grid, "plaza", ZONE_M)
    pair = VenueFusion(grid, [views["left"], views["right"]])
    estimator = make_estimator()
    frames = {}
    for name in CROPS:
        x0, x1 = CROPS[name]
        density = estimator.estimate(np.ascontiguousarray(clip_frames[0][:, x0:x1])).density
        frames[name] = CameraGround(mappers[name].grid, mappers[name].ground_grid(density))
    covering = ["left", "right"]
    threshold = venue.covered_threshold(venue.zones[0])
    for health, unknown in (
        ({"left": "live", "right": "live"}, False),
        ({"left": "live", "right": "stalled"}, True),  # the left crop alone sees ~78 %
        ({"left": "failed", "right": "stalled"}, True),
    ):
        live = {name for name, state in health.items() if state == "live"}
        measure = measure_zone(pair.fuse(frames, live=live), mask)
        status = zone_status(
            "plaza", measure.covered_fraction, covering, health, min_covered_fraction=threshold
        )
        assert status.unknown is unknown, status


def test_config_check_on_the_real_footprints(pets_venue) -> None:
    venue, grid, mappers, views = pets_venue
    footprints = {name: view.footprint for name, view in views.items() if name != "plaza"}
    # The footprints match where the cameras' weights say they see (within a cell's rim).
    for name, footprint in footprints.items():
        seen = views[name].covers.sum() * grid.cell_m**2
        inside = footprint.intersection(shapely_box(*grid.bounds)).area
        assert seen == pytest.approx(inside, rel=0.05), name
    assert venue_problems(venue, footprints) == []
    bad = VenueConfig(
        name="pets",
        zones=[
            {"name": "plaza", "polygon_m": ZONE_M},
            {"name": "car-park", "polygon_m": [(60, 60), (70, 60), (70, 70), (60, 70)]},
        ],
        gates=[{"name": "north", "start_m": (-40, 30), "end_m": (-36, 30), "into": "plaza"}],
    )
    text = "\n".join(venue_problems(bad, footprints))
    assert "venue zone 'car-park': no camera footprint covers it" in text
    assert "gate 'north': it lies outside every camera's view" in text
    assert "plaza" not in text.replace("into", "")
