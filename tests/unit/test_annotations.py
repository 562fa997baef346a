"""Lesion annotations: the manifest cell, and the same placement as the pixels (left and right
views), checked by a round trip and by lesions drawn into synthetic source images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.serving.preprocess import Geometry, place, plan
from models.training.annotations import (
    Annotation,
    Box,
    Circle,
    Mask,
    decode,
    encode,
    load_mask,
    mask_to_model,
    mask_to_source,
    to_model,
    to_source,
)

WORKING = (256, 192)
ROWS, COLUMNS = 600, 400


def breast(laterality: str) -> np.ndarray:
    """A half-ellipse breast against the left edge (mirrored for a right view), with a
    brighter band so the image is not symmetric top to bottom."""
    y, x = np.mgrid[0:ROWS, 0:COLUMNS]
    inside = ((y - ROWS / 2) / (ROWS / 2.3)) ** 2 + (x / (COLUMNS * 0.75)) ** 2 < 1
    image = np.where(inside, 0.3, 0.0).astype(np.float32)
    image[(y > 150) & (y < 200) & inside] = 0.4
    return image[:, ::-1].copy() if laterality == "R" else image


def disc(circle: Circle) -> np.ndarray:
    y, x = np.mgrid[0:ROWS, 0:COLUMNS]
    return np.asarray((x - circle.column) ** 2 + (y - circle.row) ** 2 <= circle.radius**2)


def centroid(weights: np.ndarray) -> tuple[float, float]:
    """(column, row) of a non-negative weight map."""
    y, x = np.mgrid[0 : weights.shape[0], 0 : weights.shape[1]]
    total = float(weights.sum())
    return float((x * weights).sum()) / total, float((y * weights).sum()) / total


def lesion(laterality: str) -> Circle:
    # well inside the breast, off its centre line, on the side away from the chest wall edge
    return Circle(190.0 if laterality == "L" else COLUMNS - 1 - 190.0, 380.0, 14.0)


@pytest.mark.parametrize("laterality", ["L", "R"])
def test_a_disc_drawn_in_the_source_lands_where_the_mapped_circle_says(laterality: str) -> None:
    circle = lesion(laterality)
    image = breast(laterality)
    with_disc = np.where(disc(circle), 1.0, image).astype(np.float32)
    geometry = plan(with_disc, laterality, WORKING)
    assert geometry.flipped == (laterality == "R")
    # the disc alone: the placed image with it less the placed image without it
    difference = place(with_disc, geometry) - place(image, geometry)
    mapped = to_model(circle, geometry)
    assert isinstance(mapped, Circle)
    column, row = centroid(np.clip(difference, 0, None))
    assert abs(column - mapped.column) <= 1 and abs(row - mapped.row) <= 1
    # its size too: the disc's area in the model grid is the mapped circle's
    assert float(difference.sum()) / 0.7 == pytest.approx(np.pi * mapped.radius**2, rel=0.1)
    # a right view's lesion lands where the same lesion of the mirrored left view does
    left = to_model(lesion("L"), plan(breast("L"), "L", WORKING))
    assert isinstance(left, Circle)
    assert (mapped.column, mapped.row) == pytest.approx((left.column, left.row), abs=1e-6)


@pytest.mark.parametrize("laterality", ["L", "R"])
def test_circles_and_boxes_round_trip_exactly(laterality: str) -> None:
    geometry = plan(breast(laterality), laterality, WORKING)
    shapes: list[Circle | Box] = [
        lesion(laterality),
        Circle(0.0, 0.0, 1.0),
        Box(120.5, 300.0, 180.0, 341.25),
        Box(0.0, 0.0, COLUMNS - 1.0, ROWS - 1.0),
    ]
    for shape in shapes:
        back = to_source(to_model(shape, geometry), geometry)
        assert type(back) is type(shape)
        assert list(vars(back).values()) == pytest.approx(list(vars(shape).values()), abs=1e-6)


@pytest.mark.parametrize("laterality", ["L", "R"])
def test_a_box_maps_to_the_box_around_its_placed_pixels(laterality: str) -> None:
    box = Box(150.0, 350.0, 209.0, 389.0) if laterality == "L" else Box(190.0, 350.0, 249.0, 389.0)
    image = breast(laterality)
    filled = image.copy()
    filled[350:390, int(box.left) : int(box.right) + 1] = 1.0
    geometry = plan(filled, laterality, WORKING)
    mapped = to_model(box, geometry)
    assert isinstance(mapped, Box) and mapped.left < mapped.right and mapped.top < mapped.bottom
    placed = place(filled, geometry, nearest=True) - place(image, geometry, nearest=True)
    rows, columns = np.nonzero(placed > 0.3)
    # the nearest-neighbour pixels of the box: their centres lie within a pixel of its edges
    assert abs(columns.min() - mapped.left) <= 1 and abs(columns.max() - mapped.right) <= 1
    assert abs(rows.min() - mapped.top) <= 1 and abs(rows.max() - mapped.bottom) <= 1


@pytest.mark.parametrize("laterality", ["L", "R"])
def test_a_mask_is_placed_like_the_pixels_and_comes_back(laterality: str) -> None:
    circle = lesion(laterality)
    mask = disc(circle)
    geometry = plan(breast(laterality), laterality, WORKING)
    placed = mask_to_model(mask, geometry)
    assert placed.dtype == bool and placed.shape == WORKING
    assert set(np.unique(place(mask.astype(np.float32), geometry, nearest=True))) == {0.0, 1.0}
    mapped = to_model(circle, geometry)
    assert isinstance(mapped, Circle)
    column, row = centroid(placed.astype(np.float64))
    assert abs(column - mapped.column) <= 1 and abs(row - mapped.row) <= 1
    back = mask_to_source(placed, geometry)
    assert back.shape == mask.shape and back.dtype == bool
    # pixels that differ lie on the outline, within one model pixel of it
    y, x = np.nonzero(back != mask)
    distance = np.abs(np.hypot(x - circle.column, y - circle.row) - circle.radius)
    one_model_pixel = 1 / min(geometry.scale)
    assert distance.max(initial=0.0) <= one_model_pixel + 0.5
    assert (back & mask).sum() / (back | mask).sum() > 0.8


def test_nearest_placement_leaves_the_bilinear_placement_alone() -> None:
    image = breast("L")
    geometry = plan(image, "L", WORKING)
    assert place(image, geometry).dtype == np.float32
    assert not np.array_equal(place(image, geometry), place(image, geometry, nearest=True))


def test_the_manifest_cell_round_trips(tmp_path: Path) -> None:
    annotations = (
        Annotation(Circle(535, 598, 197), "mass", "benign"),
        Annotation(Box(100.5, 200, 180, 260.5), "calcification"),
        Annotation(Mask(tmp_path / "rois" / "000001.dcm"), None, "malignant"),
        Annotation(Mask(Path("/elsewhere/roi.png"))),
    )
    cell = encode(annotations, tmp_path)
    assert '"circle":[535,598,197]' in cell and '"mask":"rois/000001.dcm"' in cell
    assert str(tmp_path) not in cell
    assert decode(cell, tmp_path) == annotations
    assert encode((), tmp_path) == "" and decode(" ", tmp_path) == ()


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("{", "not JSON"),
        ('{"circle":[1,2,3]}', "not a JSON list"),
        ("[1]", "is not an object"),
        ('[{"circle":[1,2,3],"box":[1,2,3,4]}]', "exactly one of"),
        ('[{"circle":[1,2]}]', "not 3 numbers"),
        ('[{"circle":[1,2,0]}]', "no positive radius"),
        ('[{"box":[5,2,3,4]}]', "not left, top, right, bottom"),
        ('[{"box":[1,2,"3",4]}]', "not 4 numbers"),
        ('[{"mask":""}]', "not a path"),
        ('[{"circle":[1,2,3],"type":"cyst"}]', "lesion type 'cyst'"),
        ('[{"circle":[1,2,3],"pathology":"unknown"}]', "pathology 'unknown'"),
    ],
)
def test_a_malformed_cell_says_why(cell: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode(cell, Path("/data"))


def test_load_mask_reads_png(tmp_path: Path) -> None:
    from PIL import Image

    pixels = np.zeros((20, 10), dtype=np.uint8)
    pixels[5:8, 2:4] = 255
    Image.fromarray(pixels).save(tmp_path / "roi.png")
    mask = load_mask(tmp_path / "roi.png")
    assert mask.dtype == bool and mask.sum() == 6 and mask[6, 3]


def test_a_geometry_with_padding_maps_a_mask_into_the_content() -> None:
    geometry = Geometry((100, 400), False, (0, 0, 100, 400), (0.48, 0.48), (104, 0), (256, 192))
    mask = np.zeros((100, 400), dtype=bool)
    mask[:, :] = True
    placed = mask_to_model(mask, geometry)
    np.testing.assert_array_equal(placed, geometry.content_mask())
