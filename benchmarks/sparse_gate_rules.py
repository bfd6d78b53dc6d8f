"""The sparse-scene gate's rule against the alternatives it was chosen among, on real frames.

For every 3rd frame of the PETS 2009 clip (the near-empty plaza the gate is for) and the
ShanghaiTech B and Beijing-BRT validation images (where it must not hurt), runs the shipped
density model and the SSD detector once, then prints the count MAE of each rule:

- the density model alone, and SSD alone (its box count);
- a floor without the detector: density cells whose 5x5-cell neighbourhood holds under 0.7 people
  dropped;
- below 12 people, the density inside the widened boxes (no agreement test, no cap);
- below 20 people and SSD finding at least ``a`` x the density count, the density inside the
  widened boxes, uncapped and capped at the box count (the shipped rule, ``a`` = 0.7).

It then runs the shipped :class:`~crowdwatch.estimators.sparse_gate.SparseSceneGate` on the
other two thirds of the clip, which no rule was chosen on.

    python benchmarks/sparse_gate_rules.py
"""

from __future__ import annotations

import time
from collections.abc import Callable

import cv2
import numpy as np

from crowdwatch.estimators.density import DensityEstimator
from crowdwatch.estimators.sparse_gate import (
    SparseSceneGate,
    detection_mask,
    gate_density,
    scene_is_sparse,
)
from crowdwatch.estimators.ssd import SsdPersonDetector
from crowdwatch.evaluation.datasets import annotated_samples, data_root, pets_frames, select_split

SETS = (
    ("ShanghaiTech B val", "shanghaitech", "shanghaitech/part_B_train"),
    ("Beijing-BRT val", "brt", "beijing_brt/train"),
)


class Seen:
    """One image as the rules see it: truth, the density model's cells and map, SSD's boxes."""

    def __init__(
        self, image: np.ndarray, truth: float, *, density: DensityEstimator, ssd: SsdPersonDetector
    ) -> None:
        self.truth = truth
        self.cells = density.cell_density(image)
        self.map = density.estimate(image).density
        self.boxes = ssd.detect(image)[0]
        self.count = float(self.map.sum(dtype=np.float64))


def floor_count(seen: Seen, *, window: int = 5, least: float = 0.7) -> float:
    """Density cells kept only where their window x window neighbourhood holds ``least`` people."""
    local = cv2.boxFilter(
        seen.cells, -1, (window, window), normalize=False, borderType=cv2.BORDER_CONSTANT
    )
    return float(seen.cells[local >= least].sum())


def in_boxes(seen: Seen) -> float:
    """The density's mass inside the widened boxes."""
    height, width = seen.map.shape
    return float(seen.map[detection_mask(boxes=seen.boxes, height=height, width=width)].sum())


def gated(*, below: float, agreement: float | None, capped: bool) -> Callable[[Seen], float]:
    """A gate: under ``below`` people (and, with ``agreement``, where SSD finds that share of
    them), the density inside the widened boxes, capped at the box count or not."""

    def count(seen: Seen) -> float:
        if agreement is None:
            applies = seen.count < below
        else:
            applies = scene_is_sparse(
                density_count=seen.count,
                detections=len(seen.boxes),
                below=below,
                agreement=agreement,
            )
        if not applies:
            return seen.count
        if capped:
            return float(gate_density(density=seen.map, boxes=seen.boxes).sum(dtype=np.float64))
        return in_boxes(seen)

    return count


RULES: dict[str, Callable[[Seen], float]] = {
    "density alone": lambda seen: seen.count,
    "SSD alone": lambda seen: float(len(seen.boxes)),
    "floor: 5x5 cells under 0.7 dropped": floor_count,
    "below 12, in boxes": gated(below=12, agreement=None, capped=False),
    "below 20, agree 0.4, in boxes": gated(below=20, agreement=0.4, capped=False),
    "below 20, agree 0.7, in boxes": gated(below=20, agreement=0.7, capped=False),
    "below 20, agree 0.7, capped (shipped)": gated(below=20, agreement=0.7, capped=True),
    "below 20, agree 0.5, capped": gated(below=20, agreement=0.5, capped=True),
}


def main() -> int:
    root = data_root()
    density, ssd = DensityEstimator(), SsdPersonDetector()
    print(f"# sparse_gate_rules {time.strftime('%Y-%m-%d %H:%M')}")
    frames = list(pets_frames(root / "pets2009_vtest"))
    seen = {"PETS every 3rd": [Seen(f, t, density=density, ssd=ssd) for _, f, t in frames[::3]]}
    for label, dataset, folder in SETS:
        items = select_split(
            dataset, root / folder, annotated_samples(dataset, root / folder), "val"
        )
        seen[label] = [Seen(i.load(), i.count, density=density, ssd=ssd) for i in items]
    print(f"{'rule':40s}" + "".join(f"{label:>20s}" for label in seen))
    for name, rule in RULES.items():
        maes = [np.mean([abs(rule(s) - s.truth) for s in group]) for group in seen.values()]
        print(f"{name:40s}" + "".join(f"{mae:20.2f}" for mae in maes))
    gate = SparseSceneGate(density, SsdPersonDetector)
    held_out = [(f, t) for index, (_, f, t) in enumerate(frames) if index % 3]
    errors = [abs(gate.estimate(f).count - t) for f, t in held_out]
    print(f"shipped gate on the other {len(held_out)} PETS frames: MAE {np.mean(errors):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
