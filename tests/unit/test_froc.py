"""FROC by hand: hits, false marks, one find per lesion, the operating points."""

from __future__ import annotations

import numpy as np
import pytest

from models.froc import FALSE_MARKS_PER_IMAGE, ImageMarks, Lesion, Mark, froc


def test_a_hand_counted_curve() -> None:
    """Four images, three lesions. Ranked marks: 0.9 hit (lesion A), 0.8 false, 0.7 hit
    (lesion B, inside its box though beyond its radius), 0.6 second hit on A (ignored),
    0.5 false, 0.4 false, 0.3 false; lesion C is never found."""
    images = [
        ImageMarks(
            [Mark(10, 10, 0.9), Mark(11, 9, 0.6), Mark(80, 80, 0.8)],
            [Lesion(10, 10, 5)],
        ),
        ImageMarks(
            [Mark(54, 40, 0.7)],
            [Lesion(40, 40, 5, box=(30, 30, 60, 50)), Lesion(90, 90, 4)],
        ),
        ImageMarks([Mark(5, 5, 0.5), Mark(6, 6, 0.4)], []),
        ImageMarks([Mark(7, 7, 0.3)], []),
    ]
    curve = froc(images)
    assert (curve.lesions, curve.images) == (3, 4)
    np.testing.assert_allclose(curve.thresholds[1:], [0.9, 0.8, 0.7, 0.5, 0.4, 0.3])
    np.testing.assert_allclose(curve.false_marks_per_image, [0, 0, 0.25, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(curve.sensitivity, [0, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 2 / 3, 2 / 3])
    assert curve.at == pytest.approx({0.25: 2 / 3, 0.5: 2 / 3, 1.0: 2 / 3, 2.0: 2 / 3})
    assert tuple(curve.at) == FALSE_MARKS_PER_IMAGE


def test_a_mark_just_beyond_the_radius_is_false() -> None:
    lesion = Lesion(0, 0, 5)
    assert lesion.hit_by(Mark(3, 4, 0.5))  # exactly 5 away
    assert not lesion.hit_by(Mark(3, 4.1, 0.5))
    curve = froc([ImageMarks([Mark(3, 4.1, 0.9)], [lesion])])
    assert curve.at[0.25] == 0.0 and curve.at[1.0] == 0.0  # one false mark per image


def test_without_lesions_there_is_no_curve() -> None:
    with pytest.raises(ValueError, match="lesion"):
        froc([ImageMarks([Mark(1, 1, 0.5)], [])])
