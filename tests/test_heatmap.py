"""Density images and the live heat map's build-up and fading."""

from __future__ import annotations

import numpy as np
import pytest

from crowdwatch.annotate import draw_heatmap
from crowdwatch.heatmap import LiveHeatmap, overlay, splat_points


def test_each_person_has_mass_one_even_at_the_border() -> None:
    points = np.array([[50.0, 40.0], [0.0, 0.0], [99.0, 79.0], [300.0, 10.0]])
    density = splat_points(points, (80, 100), np.array([3.0, 5.0, 8.0, 2.0]))
    assert density.dtype == np.float32
    assert float(density.sum()) == pytest.approx(4.0, abs=1e-4)
    window = density[20:60, 30:70]
    assert np.unravel_index(np.argmax(window), window.shape) == (20, 20)  # peak at (50, 40)
    assert float(density[10, 99]) == pytest.approx(1.0)  # far outside: kept on the nearest pixel


def test_heat_fades_by_half_each_half_life_and_never_blinks_off() -> None:
    heat = LiveHeatmap(half_life_s=2.0)
    person = splat_points(np.array([[20.0, 20.0]]), (40, 40), 3.0)
    for step in range(50):  # someone stands still for 10 s at 5 frames/s
        heat.update(person, step * 0.2)
    standing = float(heat.value.sum())
    assert standing == pytest.approx(1.0, rel=0.01)
    empty = np.zeros_like(person)
    after_one_empty_frame = float(heat.update(empty, 10.0).sum())
    assert after_one_empty_frame == pytest.approx(standing * 0.5 ** (0.2 / 2.0), rel=1e-4)
    for step in range(1, 11):
        heat.update(empty, 10.0 + step * 0.2)
    assert float(heat.value.sum()) == pytest.approx(standing * 0.5 ** (2.2 / 2.0), rel=1e-3)


def test_fading_does_not_depend_on_the_analysis_rate() -> None:
    person = np.ones((4, 4), np.float32)
    results = []
    for fps in (2, 10):
        heat = LiveHeatmap(half_life_s=3.0)
        heat.update(person, 0.0)
        for step in range(1, 6 * fps + 1):
            heat.update(np.zeros_like(person), step / fps)
        results.append(float(heat.value[0, 0]))
    assert results[0] == pytest.approx(0.25, rel=1e-4) and results[1] == pytest.approx(
        0.25, rel=1e-4
    )


def test_half_life_must_be_positive() -> None:
    with pytest.raises(ValueError, match="half-life"):
        LiveHeatmap(0)


def test_overlay_leaves_empty_areas_untouched(clip_frames) -> None:
    frame = clip_frames[0]
    density = splat_points(np.array([[400.0, 300.0]]), frame.shape[:2], 10.0)
    shown = draw_heatmap(frame, density)
    assert np.array_equal(shown[:100, :100], frame[:100, :100])
    assert np.abs(shown[290:310, 390:410].astype(int) - frame[290:310, 390:410]).mean() > 10
    assert overlay(frame, np.zeros(frame.shape[:2], np.float32), vmax=1.0).shape == frame.shape


def test_banded_overlay_blends_each_band_colour_where_the_crowd_is(clip_frames) -> None:
    import cv2

    from crowdwatch.annotate import banded_overlay
    from crowdwatch.measures import DensityColourScale

    frame = clip_frames[0]
    scale = DensityColourScale()
    height, width = frame.shape[:2]
    values = np.tile(np.linspace(0.0, 9.0, width, dtype=np.float32), (height, 1))
    values[:50] = np.nan  # off the ground: never tinted
    out = banded_overlay(frame, values, scale, alpha=0.45, min_density=0.05)
    band = np.searchsorted(np.asarray(scale.bands.bounds), values, side="right")
    colours = np.asarray(scale.colours, np.float32)[np.minimum(band, len(scale.colours) - 1)]
    expected = frame * 0.55 + colours * 0.45
    shown = np.nan_to_num(values, nan=0.0) >= 0.05
    assert np.array_equal(out[~shown], frame[~shown])
    assert np.abs(out[shown].astype(float) - expected[shown]).max() <= 1.0  # rounding only
    # A half-size map draws what its nearest-neighbour enlargement draws.
    small = cv2.resize(values, (width // 2, height // 2), interpolation=cv2.INTER_NEAREST)
    enlarged = cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)
    assert np.array_equal(banded_overlay(frame, small), banded_overlay(frame, enlarged))
    # Only the shown pixels' box is blended: a lone blob, on a half-size map and on a map of
    # no whole ratio to the frame, draws what the full-size enlargement of its map draws.
    for map_size in ((width // 2, height // 2), (width // 2 - 7, height // 3 + 5)):
        blob = np.zeros(map_size[::-1], np.float32)
        blob[map_size[1] // 3 : map_size[1] // 2, map_size[0] // 4 : map_size[0] // 3] = 2.5
        blob[map_size[1] // 3, map_size[0] // 4] = 7.0
        enlarged = cv2.resize(blob, (width, height), interpolation=cv2.INTER_NEAREST)
        drawn = banded_overlay(frame, blob)
        assert np.array_equal(drawn, banded_overlay(frame, enlarged))
        assert 0 < np.mean(np.any(drawn != frame, axis=2)) < 0.05
    with pytest.raises(ValueError, match="does not fit"):
        banded_overlay(frame, np.zeros((height + 1, width), np.float32))
