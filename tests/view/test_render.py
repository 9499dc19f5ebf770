"""The render pipeline on arrays: binning, dark, limits, stretches, colours, saturation."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

from vampires.errors import ConfigError
from vampires.view.render import (
    COLORMAPS,
    SATURATION_RGB,
    STRETCHES,
    Renderer,
    RenderSettings,
    auto_factor,
    lookup_table,
)


def _ramp(height: int = 64, width: int = 128) -> np.ndarray:
    return (
        (np.arange(height * width, dtype=np.uint32) % 1000).astype(np.uint16).reshape(height, width)
    )


def test_grey_linear_manual_limits_map_values_to_grey_levels():
    frame = np.array([[0, 50], [100, 200]], np.uint16)
    shown = Renderer(RenderSettings(manual=(0.0, 100.0))).render(frame)
    grey = shown.rgb[..., 0]
    assert (shown.rgb[..., 0] == shown.rgb[..., 1]).all()
    assert grey[0, 0] == 0
    assert grey[0, 1] == pytest.approx(128, abs=1)
    assert grey[1, 0] == 255
    assert grey[1, 1] == 255  # above the high limit: clipped
    assert (shown.lo, shown.hi) == (0.0, 100.0)


def test_percentile_limits_follow_the_frame():
    frame = np.arange(10000, dtype=np.uint16).reshape(100, 100)
    shown = Renderer(RenderSettings(percentiles=(1.0, 99.0))).render(frame)
    assert shown.lo == pytest.approx(np.percentile(frame, 1.0), rel=0.01)
    assert shown.hi == pytest.approx(np.percentile(frame, 99.0), rel=0.01)
    flat = Renderer().render(np.full((8, 8), 7, np.uint16))
    assert flat.hi > flat.lo  # a flat frame still renders


@pytest.mark.parametrize("stretch", STRETCHES[1:])
def test_non_linear_stretches_brighten_faint_pixels(stretch):
    frame = np.array([[0, 10, 100, 1000]], np.uint16)
    base = RenderSettings(manual=(0.0, 1000.0))
    linear = Renderer(base).render(frame).rgb[0, :, 0].astype(int)
    other = Renderer(attrs.evolve(base, stretch=stretch)).render(frame).rgb[0, :, 0].astype(int)
    assert other[0] == linear[0] == 0
    assert other[3] == linear[3] == 255
    assert other[1] > linear[1]
    assert other[2] > linear[2]
    assert list(other) == sorted(other)  # monotonic


def test_colour_maps_are_distinct_and_span_their_range():
    tables = {name: lookup_table("linear", name) for name in COLORMAPS}
    assert all(t.shape == (4096, 3) and t.dtype == np.uint8 for t in tables.values())
    assert (tables["grey"][0] == 0).all()
    assert (tables["grey"][-1] == 255).all()
    firsts = {tuple(t[2048]) for t in tables.values()}
    assert len(firsts) == len(tables)


def test_binning_means_blocks_and_decimation_samples():
    frame = np.arange(16, dtype=np.uint16).reshape(4, 4)
    renderer = Renderer(RenderSettings(factor=2, manual=(0.0, 15.0)))
    mean = renderer.render(frame)
    assert mean.image.tolist() == [[2.5, 4.5], [10.5, 12.5]]
    assert mean.rgb.shape == (2, 2, 3)
    renderer.settings = RenderSettings(factor=2, sample=True, manual=(0.0, 15.0))
    assert renderer.render(frame).image.tolist() == [[0, 2], [8, 10]]
    odd = Renderer(RenderSettings(factor=3)).render(np.zeros((7, 5), np.uint16))
    assert odd.image.shape == (2, 1)  # partial edge blocks dropped


def test_dark_is_subtracted_before_binning():
    frame = np.full((4, 4), 300, np.uint16)
    dark = np.full((4, 4), 200.0, np.float32)
    dark[0, 0] = 0.0
    shown = Renderer(RenderSettings(factor=2)).render(frame, dark)
    assert shown.image[0, 0] == pytest.approx((300 + 3 * 100) / 4)
    assert shown.image[1, 1] == pytest.approx(100.0)
    with pytest.raises(ConfigError, match="same crop"):
        Renderer().render(frame, np.zeros((2, 2), np.float32))


def test_saturated_pixels_are_highlighted_unless_turned_off():
    frame = _ramp()
    frame[10, 20] = 65535
    shown = Renderer(RenderSettings()).render(frame)
    assert tuple(shown.rgb[10, 20]) == SATURATION_RGB
    assert shown.saturated == 1
    binned = Renderer(RenderSettings(factor=4, sample=True)).render(frame)
    assert tuple(binned.rgb[10 // 4, 20 // 4]) == SATURATION_RGB  # flagged even when sampled away
    level = Renderer(RenderSettings(saturation=900.0)).render(frame)
    assert level.saturated > 1
    off = Renderer(RenderSettings(show_saturation=False)).render(frame)
    assert off.saturated == 0
    assert tuple(off.rgb[10, 20]) != SATURATION_RGB


def test_float_frames_render_and_never_saturate_by_default():
    frame = np.linspace(-5, 5, 64, dtype=np.float32).reshape(8, 8)
    shown = Renderer().render(frame)
    assert shown.saturated == 0
    assert shown.rgb[..., 0].min() == 0
    assert shown.rgb[..., 0].max() == 255


def test_buffers_are_reused_between_frames():
    renderer = Renderer()
    first = renderer.render(_ramp())
    second = renderer.render(_ramp())
    assert first.rgb is second.rgb


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"stretch": "gamma"}, "stretch"),
        ({"colormap": "jet"}, "colour map"),
        ({"percentiles": (99.0, 1.0)}, "percentiles"),
        ({"percentiles": (0.0, 101.0)}, "percentiles"),
        ({"manual": (5.0, 5.0)}, "manual"),
        ({"manual": (0.0, float("nan"))}, "manual"),
        ({"factor": 0}, "binning"),
        ({"factor": True}, "binning"),
        ({"saturation": "high"}, "saturation"),
    ],
)
def test_bad_settings_are_refused(changes, match):
    with pytest.raises(ConfigError, match=match):
        RenderSettings(**changes)


@pytest.mark.parametrize("frame", [np.zeros(5, np.uint16), np.zeros((2, 2), complex), "frame"])
def test_bad_frames_are_refused(frame):
    with pytest.raises(ConfigError, match="2-D frames"):
        Renderer().render(frame)


def test_auto_factor_fits_the_view():
    assert auto_factor((1096, 2236), (1100, 600)) == 2
    assert auto_factor((1096, 2236), (1200, 700)) == 2  # 1.86: rounded
    assert auto_factor((1096, 2236), (1600, 900)) == 1
    assert auto_factor((536, 536), (1100, 600)) == 1
    assert auto_factor((2304, 4096), (1000, 560)) == 4
    assert auto_factor((10, 10), (0, 0)) == 10
