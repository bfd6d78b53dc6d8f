"""Annotators: draw heat maps, zones, people and status text on frames."""

from crowdwatch.annotate.draw import (
    DISPLAY_M2_SCALE,
    LEVEL_COLOURS,
    banded_overlay,
    draw_density_m2,
    draw_header,
    draw_heatmap,
    draw_lines,
    draw_points,
    draw_zones,
)

__all__ = [
    "DISPLAY_M2_SCALE",
    "LEVEL_COLOURS",
    "banded_overlay",
    "draw_density_m2",
    "draw_header",
    "draw_heatmap",
    "draw_lines",
    "draw_points",
    "draw_zones",
]
