"""Drawing analysis results on frames: heat map, zones in their alert colours, counts, people."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import cv2
import numpy as np

from crowdwatch.heatmap.colour import overlay, smooth_for_display
from crowdwatch.measures import DensityColourScale
from crowdwatch.metrics.records import LineMetrics, ZoneMetrics
from crowdwatch.types import Level
from crowdwatch.zones.zone import Zone

_DENSITY_SCALE = DensityColourScale()


class CountingLineShape(Protocol):
    """What drawing needs of a counting line (a ``LineConfig`` has it): image points, the
    name, and which side counts as "in"."""

    name: str
    start: tuple[float, float]
    end: tuple[float, float]
    positive: str


# BGR colours per alert level: calm green, then amber, orange, red.
LEVEL_COLOURS: dict[str, tuple[int, int, int]] = {
    "normal": (80, 200, 80),
    "advisory": (0, 215, 255),
    "warning": (0, 140, 255),
    "critical": (0, 0, 230),
}


#: The display heat map is smoothed at this fraction of the frame's size (its blur is a
#: person wide, so nothing finer than a few pixels is there to lose).
DISPLAY_SMOOTHING_SCALE = 0.25
#: The people/m² bands are drawn from the ground grid read at this fraction of the frame's
#: size: the grid's cells are several pixels wide anyway, and a half-size map is a quarter of
#: the remap and band tests (``banded_overlay``).
DISPLAY_M2_SCALE = 0.5


def draw_heatmap(
    frame: np.ndarray, heat: np.ndarray, opacity: float = 0.6, people_scale: float = 0.35
) -> np.ndarray:
    """Overlay a heat map (people per pixel) so that a lone person reads as a warm blob.

    ``people_scale`` sets the colour map's top: the density of that many people packed into a
    blob as wide as the frame's 1/40th, which keeps the scale steady from frame to frame.
    """
    sigma = max(frame.shape[:2]) / 80
    smooth = _smooth_reduced(heat, sigma, DISPLAY_SMOOTHING_SCALE)
    vmax = people_scale / (2 * np.pi * sigma**2 + 1e-9)
    return overlay(frame, smooth, vmax=vmax, max_alpha=opacity)


def _smooth_reduced(values: np.ndarray, sigma_px: float, scale: float) -> np.ndarray:
    """:func:`smooth_for_display` done on a copy reduced by ``scale`` and brought back to
    full size: the same soft blobs at a fraction of a full-size Gaussian's cost."""
    height, width = values.shape[:2]
    small_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if sigma_px * scale < 1.0 or min(small_size) < 8:
        return smooth_for_display(values, sigma_px)
    small = cv2.resize(values.astype(np.float32, copy=False), small_size,
                       interpolation=cv2.INTER_AREA)  # fmt: skip
    small = cv2.GaussianBlur(small, (0, 0), sigma_px * small_size[0] / width)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def draw_density_m2(
    frame: np.ndarray, people_per_m2: np.ndarray, scale: DensityColourScale = _DENSITY_SCALE
) -> np.ndarray:
    """Overlay people per m² in the crowd-safety bands' colours, with a legend of the bands."""
    image = banded_overlay(frame, people_per_m2, scale)
    x, y = 8, frame.shape[0] - 8 - 16 * len(scale.legend())
    panel = image[y - 4 : frame.shape[0] - 4, 4:170]
    cv2.multiply(panel, 0.35, dst=panel)  # darken behind the legend so it reads anywhere
    for name, limits, colour in scale.legend():
        cv2.rectangle(image, (x, y), (x + 12, y + 12), colour, -1)
        _text(image, f"{name} {limits}/m2", (x + 18, y + 11), (255, 255, 255), 0.4)
        y += 16
    return image


def banded_overlay(
    frame: np.ndarray,
    people_per_m2: np.ndarray,
    scale: DensityColourScale = _DENSITY_SCALE,
    alpha: float = 0.45,
    min_density: float = 0.05,
) -> np.ndarray:
    """People per m² laid over a BGR frame in the crowd-safety bands' colours, in uint8.

    Each pixel's band is the number of band bounds at or below its value (NaN: none, and it is
    not shown), its colour a table look-up, and the blend ``(1 - alpha) x frame + alpha x
    colour`` is one ``addWeighted`` copied where the density is at least ``min_density``, all
    within the bounding box of the shown pixels (on the PETS plaza 14 % of the frame: 2.1 ->
    0.8 ms). ``people_per_m2`` may be smaller than the frame (annotate reads the ground grid
    at :data:`DISPLAY_M2_SCALE` of it): the bands are found at the map's size and scaled up with
    nearest-neighbour, so their edges move by less than one map pixel.
    """
    values = np.asarray(people_per_m2, np.float32)
    if values.ndim != 2 or any(m > f for m, f in zip(values.shape, frame.shape[:2], strict=True)):
        raise ValueError(f"map {values.shape} does not fit the frame {frame.shape[:2]}")
    shown = cv2.compare(values, float(min_density), cv2.CMP_GE)  # NaN compares false
    image = frame.copy()
    if not cv2.countNonZero(shown):
        return image
    index = np.zeros(values.shape, np.uint8)
    for bound in scale.bands.bounds:
        cv2.add(index, 1, dst=index, mask=cv2.compare(values, float(bound), cv2.CMP_GE))
    hidden = len(scale.colours)  # a band index past the last colour: not shown
    index[shown == 0] = hidden
    index, box = _bands_in_frame_box(index, cv2.boundingRect(shown), frame.shape[:2])
    table = np.zeros((256, 1, 3), np.uint8)
    table[: len(scale.colours), 0] = np.array(scale.colours, np.uint8)
    colours = cv2.applyColorMap(index, table)  # the band's colour: a 3-channel look-up
    blended = cv2.addWeighted(frame[box], 1.0 - alpha, colours, alpha, 0.0)
    cv2.copyTo(blended, cv2.compare(index, hidden, cv2.CMP_LT), image[box])
    return image


def _bands_in_frame_box(
    index: np.ndarray, rect: tuple[int, int, int, int], frame_shape: tuple[int, int]
) -> tuple[np.ndarray, tuple[slice, slice]]:
    """The band indices scaled up nearest-neighbour to the frame, within the frame's box that
    the map's (x, y, w, h) ``rect`` covers (with the box). Where the frame is a whole multiple
    of the map (a half-size map of an even-sized frame) only the rectangle is scaled, which is
    the same pixels; otherwise the whole map is, and the box widened by a pixel each way."""
    x, y, width, height = rect
    sy, sx = frame_shape[0] / index.shape[0], frame_shape[1] / index.shape[1]
    if sy.is_integer() and sx.is_integer():
        fy, fx = int(sy), int(sx)
        part = index[y : y + height, x : x + width]
        if (fy, fx) != (1, 1):
            part = cv2.resize(part, None, fx=fx, fy=fy, interpolation=cv2.INTER_NEAREST)
        return part, (slice(y * fy, (y + height) * fy), slice(x * fx, (x + width) * fx))
    rows = slice(max(0, int(y * sy) - 1), min(frame_shape[0], int(np.ceil((y + height) * sy)) + 1))
    columns = slice(
        max(0, int(x * sx) - 1), min(frame_shape[1], int(np.ceil((x + width) * sx)) + 1)
    )
    full = cv2.resize(index, (frame_shape[1], frame_shape[0]), interpolation=cv2.INTER_NEAREST)
    return full[rows, columns], (rows, columns)


def draw_lines(
    frame: np.ndarray, lines: Sequence[CountingLineShape], metrics: Sequence[LineMetrics]
) -> np.ndarray:
    """Counting lines with an arrow to their "in" side and their crossings each way."""
    by_name = {m.line: m for m in metrics}
    for line in lines:
        record = by_name.get(line.name)
        colour = _level_colour(record)
        start, end = np.array(line.start, float), np.array(line.end, float)
        cv2.line(frame, _pt(start), _pt(end), colour, 3, cv2.LINE_AA)
        middle = (start + end) / 2
        direction = end - start
        normal = np.array([-direction[1], direction[0]]) / (np.linalg.norm(direction) + 1e-9)
        if line.positive == "left":
            normal = -normal
        cv2.arrowedLine(frame, _pt(middle), _pt(middle + 25 * normal), colour, 2, cv2.LINE_AA,
                        tipLength=0.35)  # fmt: skip
        text = line.name
        if record is not None:
            text += f" in {record.crossed_in:.0f} out {record.crossed_out:.0f}"
        _label(frame, text, (int(end[0]), int(end[1]) + 18), colour)
    return frame


def draw_zones(
    frame: np.ndarray, zones: Sequence[Zone], metrics: Sequence[ZoneMetrics]
) -> np.ndarray:
    """Outline each zone in its alert colour and label it with its count (and density)."""
    by_name = {m.zone: m for m in metrics}
    for zone in zones:
        record = by_name.get(zone.name)
        colour = _level_colour(record)
        thickness = 2 if record is None or record.level == Level.NORMAL else 4
        cv2.polylines(frame, [np.round(zone.polygon).astype(np.int32)], True, colour, thickness)
        if record is not None:
            _label(frame, _zone_text(record), _label_anchor(zone.polygon), colour)
    return frame


def draw_points(frame: np.ndarray, points: np.ndarray, colour=(255, 255, 255)) -> np.ndarray:
    """Mark people positions with small rings (positions only: no identities)."""
    for x, y in np.round(points).astype(int):
        cv2.circle(frame, (int(x), int(y)), 3, colour, 1, cv2.LINE_AA)
    return frame


def draw_header(frame: np.ndarray, text: str) -> np.ndarray:
    """A dark strip along the top with a line of status text."""
    cv2.rectangle(frame, (0, 0), (frame.shape[1], 26), (20, 20, 20), -1)
    cv2.putText(
        frame, text, (8, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA
    )
    return frame


def _zone_text(record: ZoneMetrics) -> str:
    text = f"{record.zone}: {record.count:.1f}"
    if record.density is not None:
        text += f" ({record.density:.2f}/m2)"
    if record.level != Level.NORMAL:
        text += f" {record.level.label.upper()}"
    return text


def _label_anchor(polygon: np.ndarray) -> tuple[int, int]:
    top = polygon[np.argmin(polygon[:, 1])]
    return int(max(top[0], 4)), int(max(top[1] - 6, 40))


def _level_colour(record: ZoneMetrics | LineMetrics | None) -> tuple[int, int, int]:
    """The colour of a zone's or line's current alert level (calm green without a record)."""
    level = record.level if record is not None else Level.NORMAL
    return LEVEL_COLOURS.get(str(level), LEVEL_COLOURS["normal"])


def _pt(point: np.ndarray) -> tuple[int, int]:
    return int(round(point[0])), int(round(point[1]))


def _text(image: np.ndarray, text: str, origin, colour, size: float) -> None:
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, size, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, size, colour, 1, cv2.LINE_AA)


def _label(frame: np.ndarray, text: str, origin: tuple[int, int], colour) -> None:
    (width, height), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    x = min(origin[0], max(frame.shape[1] - width - 6, 0))
    y = origin[1]
    cv2.rectangle(frame, (x - 3, y - height - 5), (x + width + 3, y + 4), (20, 20, 20), -1)
    cv2.putText(frame, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
