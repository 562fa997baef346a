"""The overlay blend through its table gives the floating-point blend's colours, to within the
quantisation of the heat to 256 levels."""

from __future__ import annotations

import numpy as np
import pytest

from node.results.render import MAX_ALPHA, blend, exact_blend


def test_the_table_blend_matches_the_exact_one_on_every_grey_and_heat() -> None:
    rng = np.random.default_rng(7)
    grey = np.tile(np.arange(256, dtype=np.uint8), (64, 4))
    heat = rng.uniform(-0.2, 1.2, grey.shape).astype(np.float32)  # out of range is clipped
    fast, exact = blend(grey, heat), exact_blend(grey, heat)
    assert fast.shape == (*grey.shape, 3) and fast.dtype == np.uint8
    difference = np.abs(fast.astype(int) - exact.astype(int))
    assert difference.max() <= 2, difference.max()
    assert difference.mean() < 0.2


def test_no_heat_leaves_the_grey_and_full_heat_is_red() -> None:
    grey = np.full((4, 4), 100, dtype=np.uint8)
    cold = blend(grey, np.zeros((4, 4), dtype=np.float32))
    assert (cold == 100).all()
    hot = blend(grey, np.ones((4, 4), dtype=np.float32))
    expected = np.round(np.array([100, 100, 100]) * (1 - MAX_ALPHA) + [255 * MAX_ALPHA, 0, 0])
    assert (hot == expected.astype(np.uint8)).all(), hot[0, 0]


def test_blend_refuses_mismatched_or_wide_input() -> None:
    with pytest.raises(ValueError, match="shape"):
        blend(np.zeros((4, 4), np.uint8), np.zeros((4, 5), np.float32))
    with pytest.raises(TypeError, match="8-bit"):
        blend(np.zeros((4, 4), np.uint16), np.zeros((4, 4), np.float32))
