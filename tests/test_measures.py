"""Crowd measures: level-of-service bands, rate of rise, forecast, colour scale."""

from __future__ import annotations

import numpy as np
import pytest

from crowdwatch.measures import (
    CROWD_SAFETY_DENSITY,
    FRUIN_WALKWAY_DENSITY,
    FRUIN_WALKWAY_FLOW,
    DensityColourScale,
    LevelBands,
    density_level_of_service,
    flow_level_of_service,
    minutes_to_threshold,
    rate_of_rise,
    safety_level,
    zone_density,
)


@pytest.mark.parametrize(
    ("density", "level"),
    [
        (0.0, "A"),
        (0.2, "A"),
        (0.31, "B"),
        (0.5, "C"),
        (1.0, "D"),
        (1.5, "E"),
        (2.15, "F"),
        (9, "F"),
    ],
)
def test_fruin_density_levels(density, level):
    assert density_level_of_service(density) == level


@pytest.mark.parametrize(
    ("flow", "level"),
    [(10, "A"), (23, "B"), (40, "C"), (60, "D"), (70, "E"), (82, "F"), (120, "F")],
)
def test_fruin_flow_levels(flow, level):
    assert flow_level_of_service(flow) == level


def test_safety_levels_follow_the_literature():
    assert safety_level(0.3) == "free"
    assert safety_level(4.0) == "critical"  # Still's critical density
    assert safety_level(9.5) == "crush"  # Itaewon 22:25
    assert CROWD_SAFETY_DENSITY.lower_bound("critical") == 4.0


def test_bands_are_configurable():
    event = LevelBands.from_pairs([("ok", 1.5), ("busy", 3.0)], last="full", unit="people/m²")
    assert [event.level(v) for v in (1.0, 1.5, 2.9, 3.0)] == ["ok", "busy", "busy", "full"]
    assert density_level_of_service(2.0, bands=event) == "busy"
    np.testing.assert_array_equal(event.indices(np.array([0.5, np.nan, 4.0])), [0, -1, 2])
    assert event.level(float("nan")) is None


@pytest.mark.parametrize(
    ("names", "bounds", "message"),
    [
        (("a", "b"), (1.0, 2.0), "one name more"),
        (("a", "b", "c"), (2.0, 1.0), "increasing"),
        (("a", "a"), (1.0,), "distinct"),
    ],
)
def test_bad_bands_are_rejected(names, bounds, message):
    with pytest.raises(ValueError, match=message):
        LevelBands(names, bounds)


def test_fruin_defaults_match_the_research_notes():
    assert FRUIN_WALKWAY_DENSITY.bounds == (0.31, 0.43, 0.72, 1.08, 2.15)
    assert FRUIN_WALKWAY_FLOW.bounds == (23.0, 33.0, 49.0, 66.0, 82.0)


def test_rate_of_rise_per_minute_of_a_filling_zone():
    times = np.arange(0, 120, 2.0)
    density = 0.5 + 0.02 * times  # +1.2 people/m² per minute
    assert rate_of_rise(times, density) == pytest.approx(1.2)


def test_rate_of_rise_shrugs_off_outliers():
    times = np.arange(0, 60, 1.0)
    counts = 100 + 0.5 * times
    counts[[10, 30, 31, 45]] = [400, 0, 0, 350]  # miscounts, a bus passing the camera
    assert rate_of_rise(times, counts) == pytest.approx(30.0, rel=0.02)


def test_rate_of_rise_uses_only_the_trailing_window():
    times = np.arange(0, 300, 5.0)
    values = np.where(times < 200, 3.0 - 0.01 * times, 1.0 + 0.01 * (times - 200))
    assert rate_of_rise(times, values, window_s=60) == pytest.approx(0.6)


def test_rate_of_rise_needs_samples():
    assert rate_of_rise([0.0, 1.0], [1.0, 2.0]) is None
    assert rate_of_rise([], []) is None
    with pytest.raises(ValueError, match="times"):
        rate_of_rise([0, 1, 2], [1, 2])


def test_minutes_to_threshold_at_current_trend():
    times = np.arange(0, 61, 5.0)
    density = 2.0 + times / 60  # 3.0 now, +1 per minute
    assert minutes_to_threshold(times, density, threshold=4.0) == pytest.approx(1.0)
    assert minutes_to_threshold(times, density, threshold=2.5) == 0.0
    assert minutes_to_threshold(times, density[::-1], threshold=4.0) is None
    assert minutes_to_threshold(times, np.full_like(times, 3.0), threshold=4.0) is None


def test_zone_density_needs_an_area():
    assert zone_density(30, 12.0) == 2.5
    with pytest.raises(ValueError, match="area"):
        zone_density(3, 0.0)


def test_colour_scale_follows_the_bands():
    scale = DensityColourScale()
    values = np.array([[0.1, 1.0, 2.5, 3.7], [4.5, 6.0, 9.0, np.nan]])
    colours = scale.colourize(values)
    assert colours.shape == (2, 4, 3) and colours.dtype == np.uint8
    expected = [scale.colours[i] for i in range(7)] + [scale.no_data]
    assert [tuple(c) for c in colours.reshape(-1, 3)] == expected
    assert scale.colour_of(4.2) == scale.colours[4]
    assert [name for name, _, _ in scale.legend()][0] == "free"
    assert scale.legend()[-1][1] == ">= 8"


def test_colour_scale_needs_one_colour_per_band():
    with pytest.raises(ValueError, match="one per band"):
        DensityColourScale(colours=((0, 0, 0),))
