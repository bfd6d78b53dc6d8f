"""Venue fusion on real video with a known truth: the PETS 2009 clip as two overlapping cameras.

The bundled clip (768x576) is cut into a left crop (x 0-480 px) and a right crop (x 288-768 px),
two cameras whose 192 px overlap sees the same people. Each crop has its own calibration in
the same ground frame (the sample config's MOT15 ground metres). The shipped density model runs
on each crop and on the uncropped frame; each camera's people/m² ground grid is placed on one
venue grid and the crops are fused (:mod:`crowdwatch.venue.fusion`: visibility-weighted mean).
A venue zone across both crops is counted four ways, frame by frame:

* fused   the two crops fused on the venue grid (what the venue layer reports);
* single  the uncropped camera alone (what fusion should reproduce);
* naive   the two crops' counts added (the overlap counted twice);
* true    MOT15 ground truth: annotated people whose feet are in the zone (skipped when the
          shared data folder is absent).

Each with its mean and its MAE against the truth (and fused against single). Two inputs are
compared: ``smoothed`` (``FrameResult.ground_m2``: people/m² counted over 1 m on the camera's
grid) and ``raw`` (the mapper's people per cell / cell area, smoothed after fusion). A last row
shows what happens when the crops' head planes come from ``build_scene`` on the crop, which
assumes the principal point at the crop's centre (wrong for a crop).

Usage:
    python benchmarks/venue_fusion.py                  # every 5th frame (159 frames, ~1-2 min)
    python benchmarks/venue_fusion.py --step 20 --edge-margin-px 0
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import cv2
import numpy as np
import yaml
from shapely import contains_xy
from shapely.geometry import Polygon

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
    zone_count,
    zone_mask,
)

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "sample_videos" / "pets2009_s2l1.mp4"
CONFIG = REPO / "sample_videos" / "pets2009_s2l1.yaml"
WIDTH, HEIGHT = 768, 576
CROPS = {"left": (0, 480), "right": (288, 768)}
#: The venue zone, MOT15 ground metres: the plaza's busy middle, across both crops.
ZONE_M = [(-16.0, -12.0), (-5.0, -12.0), (-5.0, -1.0), (-16.0, -1.0)]


def data_root() -> Path:
    return Path(os.environ.get("CROWDWATCH_DATA", REPO.parent / "shared" / "data"))


def load_truth(root: Path) -> np.ndarray | None:
    """MOT15 rows (frame 1-based, ..., x, y metres), or None when the data is absent."""
    path = root / "pets2009_vtest" / "mot15_gt.txt"
    if not path.is_file():
        return None
    return np.loadtxt(path, delimiter=",", ndmin=2)


def cameras() -> tuple[dict[str, GroundDensityMapper], dict[str, GroundDensityMapper]]:
    """Mappers of the uncropped camera and the crops (exact head planes), and the crops' mappers
    as ``build_scene`` makes them from the crop's own calibration (principal point assumed at
    the crop's centre)."""
    plaza = yaml.safe_load(CONFIG.read_text())["cameras"][0]
    config = CameraConfig(name="plaza", source="x.mp4", calibration=plaza["calibration"])
    full = build_scene(config, width=WIDTH, height=HEIGHT, anchor=Anchor.HEAD)
    exact, naive_plane = {"plaza": full.mapper}, {}
    for name, (x0, x1) in CROPS.items():
        width = x1 - x0
        image = np.array([[0.1, 0.45], [0.9, 0.4], [0.95, 0.9], [0.05, 0.85], [0.5, 0.6]])
        image = image * [width, HEIGHT]
        ground = full.calibration.to_ground(image + [x0, 0])
        crop = CameraConfig(
            name=name,
            source="x.mp4",
            calibration={"image_points": image.tolist(), "ground_points": ground.tolist()},
        )
        naive_plane[name] = build_scene(crop, width=width, height=HEIGHT, anchor=Anchor.HEAD).mapper
        exact[name] = GroundDensityMapper(full.people_plane.cropped(x0, 0), (width, HEIGHT))
    return exact, naive_plane


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--step", type=int, default=5, help="analyse every Nth frame")
    parser.add_argument("--edge-margin-px", type=float, default=None)
    parser.add_argument("--cell-m", type=float, default=0.2)
    args = parser.parse_args()

    truth = load_truth(data_root())
    venue = VenueConfig(
        name="pets", cell_m=args.cell_m, zones=[{"name": "plaza", "polygon_m": ZONE_M}]
    )
    grid = venue_grid(venue.bounds_m(), venue.cell_m)
    mask = zone_mask(grid, "plaza", ZONE_M)
    exact, from_scene = cameras()
    options = {} if args.edge_margin_px is None else {"edge_margin_px": args.edge_margin_px}

    def view(name: str, mapper: GroundDensityMapper) -> CameraView:
        return CameraView.from_calibration(
            name, mapper.calibration, *mapper.image_size, grid, **options
        )

    views = {name: view(name, m) for name, m in exact.items()}
    pair = VenueFusion(grid, [views["left"], views["right"]])
    single = VenueFusion(grid, [views["plaza"]])
    scene_pair = VenueFusion(grid, [view(n, from_scene[n]) for n in CROPS])
    for name, v in views.items():
        share = mask.covered_area_m2(v.covers, grid.cell_m) / mask.area_m2
        print(f"camera {name:6s} sees {share:5.1%} of the zone ({mask.area_m2:.0f} m²), "
              f"footprint {v.footprint.area:,.0f} m²")  # fmt: skip

    estimator = make_estimator()
    capture = cv2.VideoCapture(str(CLIP))
    polygon = Polygon(ZONE_M)
    rows: dict[str, list[float]] = {key: [] for key in (
        "fused_smoothed", "single_smoothed", "naive_smoothed",
        "fused_raw", "single_raw", "naive_raw", "fused_scene_plane", "true", "covered",
    )}  # fmt: skip
    fuse_ms = []
    index = 0
    started = time.perf_counter()
    while True:
        ok, image = capture.read()
        if not ok:
            break
        if index % args.step:
            index += 1
            continue
        smoothed, raw, scene_grids = {}, {}, {}
        for name, mapper in exact.items():
            x0, x1 = CROPS.get(name, (0, WIDTH))
            density = estimator.estimate(np.ascontiguousarray(image[:, x0:x1])).density
            smoothed[name] = CameraGround(mapper.grid, mapper.ground_grid(density))
            raw[name] = CameraGround(
                mapper.grid, mapper.ground_counts(density) / mapper.grid.cell_m**2
            )
            if name in from_scene:
                other = from_scene[name]
                scene_grids[name] = CameraGround(other.grid, other.ground_grid(density))
        for kind, grids in (("smoothed", smoothed), ("raw", raw)):
            crops = {n: grids[n] for n in CROPS}
            t0 = time.perf_counter()
            fused = pair.fuse(crops)
            measure = measure_zone(fused, mask)
            fuse_ms.append((time.perf_counter() - t0) * 1000)
            rows[f"fused_{kind}"].append(measure.count)
            rows[f"single_{kind}"].append(zone_count(single.fuse({"plaza": grids["plaza"]}), mask))
            naive = pair.naive_sum(crops)[mask.rows, mask.columns]
            rows[f"naive_{kind}"].append(float((naive * mask.share).sum() * grid.cell_m**2))
            if kind == "raw":
                rows["covered"].append(measure.covered_fraction)
        rows["fused_scene_plane"].append(zone_count(scene_pair.fuse(scene_grids), mask))
        if truth is not None:
            here = truth[truth[:, 0] == index + 1]
            rows["true"].append(float(contains_xy(polygon, here[:, 7], here[:, 8]).sum()))
        index += 1
    capture.release()
    frames = len(rows["fused_raw"])
    print(f"\n{frames} frames (every {args.step}th of {index}), venue grid {grid.shape[1]}x"
          f"{grid.shape[0]} cells of {grid.cell_m} m, zone covered {np.mean(rows['covered']):.1%}"
          f", fusion + zone measure {np.median(fuse_ms):.2f} ms a frame, "
          f"{time.perf_counter() - started:.0f} s in all")  # fmt: skip
    if truth is None:
        print(f"(no MOT15 ground truth under {data_root()}: true count skipped)")
    true = np.asarray(rows["true"]) if truth is not None else None
    header = f"{'count in the zone':40s} {'mean':>6s} {'MAE vs true':>11s} {'vs single':>10s}"
    print(header)
    print("-" * len(header))
    if true is not None:
        print(f"{'true (MOT15 feet in zone)':40s} {true.mean():6.2f} {0:11.2f} {'':>10s}")
    labels = {
        "fused": "fused (two crops)",
        "single": "single uncropped camera",
        "naive": "naive sum of the two crops",
    }
    for kind in ("smoothed", "raw"):
        reference = np.asarray(rows[f"single_{kind}"])
        for key, label in labels.items():
            values = np.asarray(rows[f"{key}_{kind}"])
            mae = f"{np.abs(values - true).mean():11.2f}" if true is not None else f"{'-':>11s}"
            ratio = values.sum() / reference.sum() - 1
            print(f"{label + ' [' + kind + ']':40s} {values.mean():6.2f} {mae} {ratio:+10.1%}")
    values = np.asarray(rows["fused_scene_plane"])
    reference = np.asarray(rows["single_smoothed"])
    mae = f"{np.abs(values - true).mean():11.2f}" if true is not None else f"{'-':>11s}"
    print(f"{'fused, crop head plane by build_scene':40s} {values.mean():6.2f} {mae} "
          f"{values.sum() / reference.sum() - 1:+10.1%}")  # fmt: skip
    for kind in ("smoothed", "raw"):
        gap = np.abs(np.subtract(rows[f"fused_{kind}"], rows[f"single_{kind}"]))
        print(f"per-frame |fused - single| [{kind}]: mean {gap.mean():.2f}, "
              f"95th pct {np.percentile(gap, 95):.2f} people")  # fmt: skip


if __name__ == "__main__":
    main()
