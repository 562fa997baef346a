"""Overlay rendering: the blend through its table gives the floating-point blend's colours, to
within the quantisation of the heat to 256 levels; marks drawn region by region are the marks
drawn on the whole image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from models.serving.result import Finding, Point, Region, Shape
from node.results.render import (
    MAX_ALPHA,
    OUTLINE,
    TEXT,
    Side,
    annotate,
    blend,
    exact_blend,
    label_layout,
    outline_points,
)


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


def whole_image_annotation(
    rgb: np.ndarray, findings: tuple[Finding, ...], lines: list[str], side: Side
) -> np.ndarray:
    """The marks drawn on the whole image at once: what ``annotate`` must give."""
    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    width = max(1, round(min(rgb.shape[:2]) / 300))
    for finding in findings:
        region = finding.region
        if region.shape is Shape.POINT:
            c, r, size = region.points[0].column, region.points[0].row, 6 * width
            draw.line([(c - size, r), (c + size, r)], fill=OUTLINE, width=width)
            draw.line([(c, r - size), (c, r + size)], fill=OUTLINE, width=width)
        else:
            draw.line(outline_points(region.shape, region.points), fill=OUTLINE, width=width)
    font, outline, places = label_layout(rgb.shape[:2], lines, side)
    for at, line in zip(places, lines, strict=True):
        draw.text(at, line, fill=TEXT, font=font, stroke_width=outline, stroke_fill=0)
    return np.asarray(image)


@pytest.mark.parametrize("side", ["left", "right"])
def test_marks_drawn_region_by_region_equal_marks_drawn_on_the_whole_image(side: Side) -> None:
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (900, 700, 3), dtype=np.uint8)
    findings = (
        Finding("mass", 0.9, Region.ellipse(Point(300.4, 420.7), 60, 35, 25)),
        Finding("mass", 0.6, Region.ellipse(Point(690.0, 10.0), 40, 20, 0)),  # past the edges
        Finding("calcification cluster", 0.5, Region.point(120.3, 80.6)),
        Finding(
            "asymmetry", 0.4, Region.polygon([Point(400, 700), Point(520, 760), Point(450, 880)])
        ),
    )
    lines = ["L CC", "score 0.87", "demo 1.0", "NOT FOR CLINICAL USE"]
    expected = whole_image_annotation(rgb.copy(), findings, lines, side)
    drawn = annotate(rgb.copy(), findings, lines, side)
    assert not np.array_equal(drawn, rgb)  # something was drawn
    assert np.array_equal(drawn, expected)
