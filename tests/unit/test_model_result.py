"""The typed result a model hands over: geometry and validation."""

from __future__ import annotations

import numpy as np
import pytest

from models.serving.result import (
    BreastResult,
    Category,
    Finding,
    ImageResult,
    ModelInfo,
    Point,
    Region,
    Shape,
    StudyResult,
)


def test_ellipse_axes_and_centre() -> None:
    flat = Region.ellipse(Point(100, 50), semi_major=20, semi_minor=10)
    assert flat.shape is Shape.ELLIPSE
    assert flat.points[0] == Point(80, 50) and flat.points[1] == Point(120, 50)
    assert flat.points[2] == Point(100, 40) and flat.points[3] == Point(100, 60)
    assert flat.center == Point(100, 50)
    turned = Region.ellipse(Point(10, 10), 5, 2, angle_degrees=90)
    assert turned.points[0].row == pytest.approx(5) and turned.points[1].row == pytest.approx(15)
    assert Region.polygon([Point(0, 0), Point(4, 0), Point(4, 4), Point(0, 4)]).center == Point(
        2, 2
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: Region(Shape.POINT, ()),
        lambda: Region.polygon([Point(0, 0), Point(1, 1)]),
        lambda: Region.ellipse(Point(0, 0), 1, 2),
        lambda: Finding("mass", 1.5, Region.point(1, 1)),
        lambda: Finding("mass", 0.5, Region.point(1, 1), frame=0),
        lambda: ImageResult("1.2", np.full((4, 4), 2.0)),
        lambda: ImageResult("1.2", np.zeros(4)),
        lambda: ImageResult("1.2", np.zeros((4, 4)), laterality="B"),
        lambda: BreastResult("L", 0.2, Category.NORMAL, birads=7),
        lambda: ModelInfo("m", "1", False, operating_threshold=-0.1),
    ],
)
def test_invalid_values_are_refused(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


def test_one_result_per_breast() -> None:
    model = ModelInfo("demo", "0.1", False, 0.5)
    left = BreastResult("L", 0.2, Category.NORMAL)
    with pytest.raises(ValueError, match="one result per breast"):
        StudyResult("1.2.3", (), (left, left), 0.2, model)
    assert StudyResult("1.2.3", (), (left,), 0.2, model).overall_score == 0.2
