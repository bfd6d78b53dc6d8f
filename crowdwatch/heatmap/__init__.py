"""Heat maps: per-frame density images, a fading live heat map, colour overlays."""

from crowdwatch.heatmap.colour import colorize, overlay, smooth_for_display
from crowdwatch.heatmap.density import reduce_mass, splat_points
from crowdwatch.heatmap.live import LiveHeatmap

__all__ = [
    "LiveHeatmap",
    "colorize",
    "overlay",
    "reduce_mass",
    "smooth_for_display",
    "splat_points",
]
