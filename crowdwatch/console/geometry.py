"""Points typed or clicked in the Setup page: parsing, formatting and drawing them.

Points are edited as text, one point per line (``x, y`` for zones and lines; ``x, y, X, Y``
for calibration: image pixels then ground metres), so that every value can also be typed.

Example:
    >>> parse_points("10, 20\\n30,40", columns=2)
    [(10.0, 20.0), (30.0, 40.0)]
    >>> format_points([(10.0, 20.5)])
    '10, 20.5'
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from crowdwatch.annotate.draw import LEVEL_COLOURS

DRAFT_COLOUR = (255, 255, 0)  # BGR cyan: the shape being drawn
SAVED_COLOUR = (200, 200, 200)


def parse_points(text: str, columns: int = 2) -> list[tuple[float, ...]]:
    """Points from text, one per line, numbers separated by commas or spaces.

    Raises ``ValueError`` naming the line that does not hold ``columns`` numbers.
    """
    points = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.replace(",", " ").split()
        if not fields:
            continue
        if len(fields) != columns:
            raise ValueError(f"line {number} ({line.strip()!r}) needs {columns} numbers")
        try:
            points.append(tuple(float(field) for field in fields))
        except ValueError:
            raise ValueError(
                f"line {number} ({line.strip()!r}) holds something not a number"
            ) from None
    return points


def format_points(points: Sequence[Sequence[float]]) -> str:
    """Text for points, one per line, without needless decimals."""
    return "\n".join(", ".join(f"{value:g}" for value in point) for point in points)


def click_to_image(click: dict, image_size: tuple[int, int]) -> tuple[float, float]:
    """Image pixel of a click on a picture displayed at ``click['width']`` x ``click['height']``.

    Example:
        >>> click_to_image({"x": 50, "y": 25, "width": 400, "height": 300}, (800, 600))
        (100.0, 50.0)
    """
    width, height = image_size
    scale_x = width / float(click.get("width") or width)
    scale_y = height / float(click.get("height") or height)
    return round(click["x"] * scale_x, 1), round(click["y"] * scale_y, 1)


def draw_setup(
    image: np.ndarray,
    zones: Sequence[tuple[str, Sequence[Sequence[float]]]] = (),
    lines: Sequence[tuple[str, Sequence[float], Sequence[float]]] = (),
    draft: Sequence[Sequence[float]] = (),
    draft_closed: bool = True,
    numbered: bool = False,
) -> np.ndarray:
    """A copy of the picture with the saved zones and lines, and the draft shape being drawn."""
    canvas = image.copy()
    for name, polygon in zones:
        points = np.round(np.asarray(polygon, np.float64)).astype(np.int32)
        cv2.polylines(canvas, [points], True, SAVED_COLOUR, 2, cv2.LINE_AA)
        _text(canvas, name, tuple(points.min(axis=0) + (4, 16)), SAVED_COLOUR)
    for name, start, end in lines:
        a, b = _pixel(start), _pixel(end)
        cv2.arrowedLine(canvas, a, b, LEVEL_COLOURS["advisory"], 2, cv2.LINE_AA, tipLength=0.04)
        _text(canvas, name, a, LEVEL_COLOURS["advisory"])
    draft_points = [_pixel(point[:2]) for point in draft]
    if len(draft_points) >= 2:
        cv2.polylines(
            canvas, [np.array(draft_points, np.int32)], draft_closed, DRAFT_COLOUR, 2, cv2.LINE_AA
        )
    for index, point in enumerate(draft_points, start=1):
        cv2.circle(canvas, point, 5, DRAFT_COLOUR, -1, cv2.LINE_AA)
        if numbered:
            _text(canvas, str(index), (point[0] + 7, point[1] - 7), DRAFT_COLOUR)
    return canvas


def _pixel(point: Sequence[float]) -> tuple[int, int]:
    return int(round(point[0])), int(round(point[1]))


def _text(canvas: np.ndarray, text: str, origin: tuple[int, int], colour) -> None:
    cv2.putText(canvas, text, (int(origin[0]), int(origin[1])), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                (0, 0, 0), 3, cv2.LINE_AA)  # fmt: skip
    cv2.putText(canvas, text, (int(origin[0]), int(origin[1])), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                colour, 1, cv2.LINE_AA)  # fmt: skip
