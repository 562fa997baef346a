"""The synthetic phantom generator: reproducible, lesions inside the breast, right views
mirrored with their lesion coordinates."""

from __future__ import annotations

import numpy as np
import pytest

from models.synthetic.phantoms import (
    FAT,
    FIBROGLANDULAR_FRACTION,
    GLAND,
    detector_spacing,
    phantom_study,
    phantom_view,
    to_stored_values,
)


def test_reproducible_and_lesion_where_it_says() -> None:
    first = phantom_study(np.random.default_rng(11), "L")
    again = phantom_study(np.random.default_rng(11), "L")
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.image, b.image)
    assert [(v.laterality, v.view, v.lesion is not None) for v in first] == [
        ("R", "CC", False),
        ("R", "MLO", False),
        ("L", "CC", True),
        ("L", "MLO", True),
    ]
    for view in first[2:]:
        assert view.lesion is not None
        c, r = round(view.lesion.center.column), round(view.lesion.center.row)
        assert view.image[r, c] > 0.5  # dense at the centre
        assert view.image[r, c] > np.median(view.image[view.image > 0.1]) + 0.1


def test_right_views_are_mirrored_with_their_lesion() -> None:
    left = phantom_view(np.random.default_rng(5), "L", "CC", with_lesion=True)
    right = phantom_view(np.random.default_rng(5), "R", "CC", with_lesion=True)
    np.testing.assert_array_equal(right.image, left.image[:, ::-1])
    assert left.lesion is not None and right.lesion is not None
    assert right.lesion.center.column == left.image.shape[1] - 1 - left.lesion.center.column
    assert right.lesion.center.row == left.lesion.center.row
    # chest wall (tissue at the image edge) on the left for L, on the right for R
    assert left.image[:, 0].mean() > left.image[:, -1].mean()
    assert right.image[:, -1].mean() > right.image[:, 0].mean()


def test_stored_values() -> None:
    stored = to_stored_values(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert stored.dtype == np.uint16 and stored.tolist() == [[0, 8192, 16383]]


def test_lesions_are_millimetres_inside_the_breast_at_any_size() -> None:
    for shape in ((256, 192), (1024, 832)):
        for seed in range(6):
            view = phantom_view(np.random.default_rng(seed), "L", "MLO", shape, with_lesion=True)
            assert view.lesion is not None
            spacing = view.pixel_spacing_mm
            assert spacing == detector_spacing(shape)
            assert 5.0 <= 2 * view.lesion.radius_mm <= 15.0
            assert view.lesion.radius_px * spacing == view.lesion.radius_mm
            c, r = round(view.lesion.center.column), round(view.lesion.center.row)
            assert view.image[r, c] > 0.5
            # tissue (not background) all around, a lesion radius beyond its edge (the chest
            # wall, at column 0, is tissue too)
            reach = round(2.5 * view.lesion.radius_px)
            around = view.image[
                max(r - reach, 0) : r + reach + 1, max(c - reach, 0) : c + reach + 1
            ]
            assert around.min() > 0.1, (shape, seed)
    large = phantom_view(
        np.random.default_rng(1), "R", "CC", with_lesion=True, lesion_diameter_mm=(30.0, 50.0)
    )
    assert large.lesion is not None and 15.0 <= large.lesion.radius_mm <= 25.0


def test_a_composition_is_the_share_of_fibroglandular_tissue() -> None:
    """a almost entirely fat ... d extremely dense: the share of the breast brighter than
    midway between fat and gland lies near the category's range and grows from a to d; a
    lesion stays brighter than the densest tissue; a wrong category is refused."""
    midway = (FAT + GLAND) / 2
    medians = []
    for composition, (low, high) in FIBROGLANDULAR_FRACTION.items():
        shares = []
        for seed in range(4):
            view = phantom_view(
                np.random.default_rng(seed), "R", ("CC", "MLO")[seed % 2], (512, 394),
                with_lesion=True, composition=composition,
            )  # fmt: skip
            assert view.composition == composition and view.lesion is not None
            breast = view.image[view.image > 0.1]
            shares.append(float(np.mean(breast > midway)))
            c, r = round(view.lesion.center.column), round(view.lesion.center.row)
            assert view.image[r, c] > np.percentile(breast, 99)
        assert low - 0.05 < min(shares) and max(shares) < high + 0.05, (composition, shares)
        medians.append(float(np.median(shares)))
    assert medians == sorted(medians)
    with pytest.raises(ValueError, match="composition"):
        phantom_view(np.random.default_rng(0), "L", "CC", composition="e")
    plain = phantom_study(np.random.default_rng(0), "L")
    assert all(view.composition is None for view in plain)
