"""The typed result a model hands over: geometry and validation."""

from __future__ import annotations

import numpy as np
import pytest

from models.serving import result


def test_ellipse_axes_and_centre() -> None:
    flat = result.Region.ellipse(result.Point(100, 50), semi_major=20, semi_minor=10)
    assert flat.shape is result.Shape.ELLIPSE
    assert flat.points[0] == result.Point(80, 50) and flat.points[1] == result.Point(120, 50)
    assert flat.points[2] == result.Point(100, 40) and flat.points[3] == result.Point(100, 60)
    assert flat.center == result.Point(100, 50)
    turned = result.Region.ellipse(result.Point(10, 10), 5, 2, angle_degrees=90)
    assert turned.points[0].row == pytest.approx(5) and turned.points[1].row == pytest.approx(15)
    corners = [result.Point(0, 0), result.Point(4, 0), result.Point(4, 4), result.Point(0, 4)]
    assert result.Region.polygon(corners).center == result.Point(2, 2)


@pytest.mark.parametrize(
    "make",
    [
        lambda: result.Region(result.Shape.POINT, ()),
        lambda: result.Region.polygon([result.Point(0, 0), result.Point(1, 1)]),
        lambda: result.Region.ellipse(result.Point(0, 0), 1, 2),
        lambda: result.Finding("mass", 1.5, result.Region.point(1, 1)),
        lambda: result.Finding("mass", 0.5, result.Region.point(1, 1), frame=0),
        lambda: result.ImageResult("1.2", np.full((4, 4), 2.0)),
        lambda: result.ImageResult("1.2", np.zeros(4)),
        lambda: result.ImageResult("1.2", np.zeros((4, 4)), laterality="B"),
        lambda: result.BreastResult("L", 0.2, result.Category.NORMAL, birads=7),
        lambda: result.ModelInfo("m", "1", False, operating_threshold=-0.1),
    ],
)
def test_invalid_values_are_refused(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


def test_one_result_per_breast() -> None:
    model = result.ModelInfo("demo", "0.1", False, 0.5)
    left = result.BreastResult("L", 0.2, result.Category.NORMAL)
    with pytest.raises(ValueError, match="one result per breast"):
        result.StudyResult("1.2.3", (), (left, left), 0.2, model)
    assert result.StudyResult("1.2.3", (), (left,), 0.2, model).overall_score == 0.2
