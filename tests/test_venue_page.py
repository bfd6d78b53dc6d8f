"""The Venue page's plan: zones where the site plan puts them, grey while unknown."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from crowdwatch.console.views.venue import UNKNOWN_COLOUR, draw_venue, zone_table
from crowdwatch.store import MetricSample
from crowdwatch.venue import VenueConfig


def _venue(plan: Path | None) -> VenueConfig:
    section = {
        "name": "arena",
        "zones": [{"name": "concourse", "polygon_m": [[-5, -5], [5, -5], [5, 5], [-5, 5]]}],
    }
    if plan is not None:
        section["plan"] = {"image": str(plan), "metres_per_pixel": 0.1, "origin_px": [300, 200]}
    return VenueConfig.model_validate(section)


def test_a_site_plan_places_the_zones_where_its_scale_and_origin_say(tmp_path: Path) -> None:
    plan = tmp_path / "plan.png"
    cv2.imwrite(str(plan), np.full((400, 600, 3), 255, np.uint8))
    unknown = MetricSample("arena", "concourse", 1e9, {"count": 3.0, "unknown": 1.0},
                           level="warning")  # fmt: skip
    image = draw_venue(_venue(plan), zones={"concourse": unknown}, gates={}, preview=None,
                       width_px=600)  # fmt: skip
    assert image.shape == (400, 600, 3)
    # The 10 m square around venue (0, 0) is 100 px around plan pixel (300, 200), drawn grey.
    grey = np.all(image == UNKNOWN_COLOUR, axis=2)
    for x, y in ((250, 200), (350, 200), (300, 250), (300, 150)):  # the outline's four sides
        assert grey[y - 1 : y + 2, x - 1 : x + 2].any(), (x, y)
    assert not grey[190:211, 260:341].any()  # inside: the plan shows through
    assert "UNKNOWN" in zone_table(_venue(None), {"concourse": unknown})


def test_without_a_plan_a_metric_grid_is_drawn() -> None:
    known = MetricSample("arena", "concourse", 1e9, {"count": 3.0, "unknown": 0.0, "density": 0.03,
                                                     "covered_fraction": 1.0})  # fmt: skip
    image = draw_venue(_venue(None), zones={"concourse": known}, gates={}, preview=None)
    assert image.shape[1] == 900
    assert np.all(image == UNKNOWN_COLOUR, axis=2).sum() < 50  # no grey outline: it is known
    table = zone_table(_venue(None), {"concourse": known})
    assert "| concourse | known | 3.0 | 0.03 | 100% |" in table
