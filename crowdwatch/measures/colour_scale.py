"""A colour scale for people per m² that follows crowd-safety bands (for heat-map overlays).

Each band gets one colour, from calm green through amber to deep red; the colour changes where
the meaning changes, so an operator reads the level, not a rainbow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from crowdwatch.measures.levels import CROWD_SAFETY_DENSITY, LevelBands

BGR = tuple[int, int, int]

#: One BGR colour per band of :data:`CROWD_SAFETY_DENSITY`.
SAFETY_COLOURS: tuple[BGR, ...] = (
    (80, 175, 76),  # free: green
    (59, 235, 255),  # restricted: yellow
    (0, 193, 255),  # slowed: amber
    (0, 152, 255),  # contact: orange
    (34, 87, 255),  # critical: red-orange
    (28, 28, 211),  # dangerous: red
    (80, 0, 120),  # crush: deep purple-red
)


@dataclass(frozen=True)
class DensityColourScale:
    """Colours for people per m² by band.

    Example:
        >>> import numpy as np
        >>> scale = DensityColourScale()
        >>> scale.colourize(np.array([[0.1, 4.5]]))[0].tolist()
        [[80, 175, 76], [34, 87, 255]]
    """

    bands: LevelBands = CROWD_SAFETY_DENSITY
    colours: tuple[BGR, ...] = SAFETY_COLOURS
    no_data: BGR = (0, 0, 0)

    def __post_init__(self) -> None:
        if len(self.colours) != len(self.bands.names):
            raise ValueError(
                f"{len(self.colours)} colours for {len(self.bands.names)} bands; give one per band"
            )
        for colour in self.colours:
            if len(colour) != 3 or not all(0 <= c <= 255 for c in colour):
                raise ValueError(f"colours must be BGR triples of 0-255, got {colour}")

    def colourize(self, people_per_m2: np.ndarray) -> np.ndarray:
        """BGR uint8 (H, W, 3) for a people-per-m² map; NaN gets ``no_data``."""
        table = np.array(list(self.colours) + [self.no_data], dtype=np.uint8)
        index = self.bands.indices(people_per_m2)
        return table[np.where(index < 0, len(self.colours), index)]

    def colour_of(self, people_per_m2: float) -> BGR:
        """The BGR colour of one value."""
        index = self.bands.index(people_per_m2)
        return self.no_data if index < 0 else self.colours[index]

    def legend(self) -> list[tuple[str, str, BGR]]:
        """(name, range text, colour) per band, for drawing a legend."""
        return [
            (name, _range_text(self.bands, i), colour)
            for i, (name, colour) in enumerate(zip(self.bands.names, self.colours, strict=True))
        ]


def _range_text(bands: LevelBands, index: int) -> str:
    bounds: Sequence[float] = bands.bounds
    if index == 0:
        return f"< {bounds[0]:g}"
    if index == len(bounds):
        return f">= {bounds[-1]:g}"
    return f"{bounds[index - 1]:g} - {bounds[index]:g}"
