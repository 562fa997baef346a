"""FROC by hand: hits, false marks, one find per lesion, the operating points."""

from __future__ import annotations

import numpy as np
import pytest

from models.training import froc as froc_module


def test_a_hand_counted_curve() -> None:
    """Four images, three lesions. Ranked marks: 0.9 hit (lesion A), 0.8 false, 0.7 hit
    (lesion B, inside its box though beyond its radius), 0.6 second hit on A (ignored),
    0.5 false, 0.4 false, 0.3 false; lesion C is never found."""
    images = [
        froc_module.ImageMarks(
            [
                froc_module.Mark(10, 10, 0.9),
                froc_module.Mark(11, 9, 0.6),
                froc_module.Mark(80, 80, 0.8),
            ],
            [froc_module.Lesion(10, 10, 5)],
        ),
        froc_module.ImageMarks(
            [froc_module.Mark(54, 40, 0.7)],
            [froc_module.Lesion(40, 40, 5, box=(30, 30, 60, 50)), froc_module.Lesion(90, 90, 4)],
        ),
        froc_module.ImageMarks([froc_module.Mark(5, 5, 0.5), froc_module.Mark(6, 6, 0.4)], []),
        froc_module.ImageMarks([froc_module.Mark(7, 7, 0.3)], []),
    ]
    curve = froc_module.froc(images)
    assert (curve.lesions, curve.images) == (3, 4)
    np.testing.assert_allclose(curve.thresholds[1:], [0.9, 0.8, 0.7, 0.5, 0.4, 0.3])
    np.testing.assert_allclose(curve.false_marks_per_image, [0, 0, 0.25, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(curve.sensitivity, [0, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 2 / 3, 2 / 3])
    assert curve.at == pytest.approx({0.25: 2 / 3, 0.5: 2 / 3, 1.0: 2 / 3, 2.0: 2 / 3})
    assert tuple(curve.at) == froc_module.FALSE_MARKS_PER_IMAGE


def test_a_mark_just_beyond_the_radius_is_false() -> None:
    lesion = froc_module.Lesion(0, 0, 5)
    assert lesion.hit_by(froc_module.Mark(3, 4, 0.5))  # exactly 5 away
    assert not lesion.hit_by(froc_module.Mark(3, 4.1, 0.5))
    curve = froc_module.froc([froc_module.ImageMarks([froc_module.Mark(3, 4.1, 0.9)], [lesion])])
    assert curve.at[0.25] == 0.0 and curve.at[1.0] == 0.0  # one false mark per image


def test_without_lesions_there_is_no_curve() -> None:
    with pytest.raises(ValueError, match="lesion"):
        froc_module.froc([froc_module.ImageMarks([froc_module.Mark(1, 1, 0.5)], [])])


def test_per_lesion_type_the_false_marks_of_all_images_count() -> None:
    """Two masses hit, one calcification missed, one untyped lesion hit. Ranked marks: 0.9
    mass A, 0.8 false, 0.7 mass B, 0.6 false, 0.5 untyped lesion, 0.4 false; the
    calcification is never marked. Three images: one false mark per image in all curves."""
    images = [
        froc_module.ImageMarks(
            [
                froc_module.Mark(10, 10, 0.9),
                froc_module.Mark(50, 50, 0.7),
                froc_module.Mark(90, 90, 0.8),
            ],
            [
                froc_module.Lesion(10, 10, 5, kind="mass"),
                froc_module.Lesion(50, 50, 5, kind="mass"),
            ],
        ),
        froc_module.ImageMarks(
            [froc_module.Mark(5, 5, 0.6)], [froc_module.Lesion(70, 70, 4, kind="calcification")]
        ),
        froc_module.ImageMarks(
            [froc_module.Mark(30, 30, 0.5), froc_module.Mark(80, 5, 0.4)],
            [froc_module.Lesion(30, 30, 6)],
        ),
    ]
    by_type = froc_module.froc_by_lesion_type(images)
    assert list(by_type) == ["mass", "calcification", froc_module.UNSPECIFIED]  # LESION_TYPES order
    mass, calcification, untyped = by_type.values()
    assert (mass.lesions, calcification.lesions, untyped.lesions) == (2, 1, 1)
    assert mass.images == calcification.images == untyped.images == 3
    assert mass.at == pytest.approx({0.25: 0.5, 0.5: 1.0, 1.0: 1.0, 2.0: 1.0})
    assert calcification.at == pytest.approx({0.25: 0.0, 0.5: 0.0, 1.0: 0.0, 2.0: 0.0})
    assert untyped.at == pytest.approx({0.25: 0.0, 0.5: 0.0, 1.0: 1.0, 2.0: 1.0})
    # the masses' and the untyped lesion's marks are no false marks in the calcification
    # curve: three false marks on three images, as in the overall curve
    assert calcification.false_marks_per_image[-1] == pytest.approx(1.0)
    overall = froc_module.froc(images)
    assert overall.false_marks_per_image[-1] == pytest.approx(1.0)
    assert overall.at[1.0] == pytest.approx(3 / 4)


def test_per_density_each_group_counts_its_own_images() -> None:
    """Density a: two images, its lesion hit at 0.5 after false marks at 0.9 and 0.8 on the
    other a image (1 false mark per a image). Density d: one image, its lesion hit at 0.3,
    no false mark. Density c: no lesion, so no curve; an image without density is in none."""
    images = [
        froc_module.ImageMarks(
            [froc_module.Mark(10, 10, 0.5)], [froc_module.Lesion(10, 10, 5)], density="a"
        ),
        froc_module.ImageMarks(
            [froc_module.Mark(5, 5, 0.9), froc_module.Mark(60, 60, 0.8)], [], density="a"
        ),
        froc_module.ImageMarks(
            [froc_module.Mark(20, 20, 0.3)], [froc_module.Lesion(20, 20, 5)], density="d"
        ),
        froc_module.ImageMarks([froc_module.Mark(1, 1, 0.95)], [], density="c"),
        froc_module.ImageMarks([froc_module.Mark(40, 40, 0.99)], [froc_module.Lesion(40, 40, 5)]),
    ]
    by_density = froc_module.froc_by_density(images, order=("a", "b", "c", "d"))
    assert list(by_density) == ["a", "d"]
    dense_a, dense_d = by_density["a"], by_density["d"]
    assert (dense_a.lesions, dense_a.images, dense_d.lesions, dense_d.images) == (1, 2, 1, 1)
    assert dense_a.at == pytest.approx({0.25: 0.0, 0.5: 0.0, 1.0: 1.0, 2.0: 1.0})
    assert dense_d.at == pytest.approx({0.25: 1.0, 0.5: 1.0, 1.0: 1.0, 2.0: 1.0})
    d_first = froc_module.froc_by_density(images, order=("d",))
    assert list(d_first) == ["d", "a"]  # others after order
