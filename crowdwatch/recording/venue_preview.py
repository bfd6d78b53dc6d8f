"""The venue's live picture: the fused people/m² grid and the cameras' footprints on the plan.

Written by the venue's step of the analysis path at every tick into ``<recordings>/<venue>/``
(``venue_live.npz``, ``venue_live.json``, each replaced atomically, never indexed) and read by
the console's Venue page, like a camera's live preview.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VENUE_LIVE = "venue_live"


@dataclass(frozen=True)
class VenuePreview:
    """One tick of the venue as the console shows it.

    Attributes:
        per_m2: (rows, columns) people/m², row 0 at ``bounds``' y_max; NaN where no live
            camera sees.
        time: wall time of the tick (epoch seconds).
        bounds: (x_min, y_min, x_max, y_max) of the venue grid, metres; cell_m: its cell side.
        live: the cameras fused at that tick; footprints: camera -> ground polygon (metres).
    """

    per_m2: np.ndarray
    time: float
    bounds: tuple[float, float, float, float]
    cell_m: float
    live: tuple[str, ...]
    footprints: dict[str, list[tuple[float, float]]]


def write_venue_preview(folder: Path, per_m2: np.ndarray, info: dict) -> None:
    """Write ``venue_live.npz`` (people/m², float16) and ``venue_live.json`` atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    heat = folder / f"{VENUE_LIVE}.npz"
    partial = folder / f"{VENUE_LIVE}.tmp.npz"
    np.savez_compressed(partial, per_m2=np.asarray(per_m2, np.float16))
    os.replace(partial, heat)
    text, partial_text = folder / f"{VENUE_LIVE}.json", folder / f"{VENUE_LIVE}.json.tmp"
    partial_text.write_text(json.dumps(info), encoding="utf-8")
    os.replace(partial_text, text)


def read_venue_preview(folder: Path) -> VenuePreview | None:
    """The latest venue picture in ``folder`` (None when there is none or it is unreadable)."""
    try:
        info = json.loads((folder / f"{VENUE_LIVE}.json").read_text(encoding="utf-8"))
        with np.load(folder / f"{VENUE_LIVE}.npz") as data:
            per_m2 = data["per_m2"].astype(np.float32)
        return VenuePreview(
            per_m2=per_m2,
            time=float(info["time"]),
            bounds=tuple(float(v) for v in info["bounds"]),
            cell_m=float(info["cell_m"]),
            live=tuple(info.get("live", ())),
            footprints={k: [tuple(p) for p in v] for k, v in info.get("footprints", {}).items()},
        )
    except (OSError, ValueError, KeyError):
        return None
