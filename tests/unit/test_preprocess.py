"""Preprocessing: display transform, orientation, crop, resize, and the exact way back."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

from models.serving.preprocess import Geometry, breast_bounds, display_values, prepare
from models.serving.result import Point
from models.synthetic import SyntheticPatient, mammogram

WORKING = (256, 192)


def phantom_with_marker(marker: Point, rows: int = 600, columns: int = 400) -> np.ndarray:
    y, x = np.mgrid[0:rows, 0:columns]
    image = np.where(
        ((y - rows / 2) / (rows / 2.2)) ** 2 + (x / (columns * 0.8)) ** 2 < 1, 0.5, 0.0
    ).astype(np.float32)
    r, c = round(marker.row), round(marker.column)
    image[r - 2 : r + 3, c - 2 : c + 3] = 1.0
    return image


@pytest.mark.parametrize("laterality", ["L", "R"])
def test_a_marker_lands_where_the_geometry_says_and_maps_back(laterality: str) -> None:
    marker = Point(120, 250)
    image = phantom_with_marker(marker)
    if laterality == "R":  # a right view: the same breast, mirrored
        image = image[:, ::-1].copy()
        marker = Point(image.shape[1] - 1 - marker.column, marker.row)
    model_input, geometry = prepare(image, laterality, WORKING)
    assert model_input.shape == WORKING
    expected = geometry.to_model(marker)
    found_row, found_column = np.unravel_index(np.argmax(model_input), model_input.shape)
    assert abs(found_column - expected.column) <= 1.5 and abs(found_row - expected.row) <= 1.5
    back = geometry.to_source(expected)
    assert back.column == pytest.approx(marker.column, abs=1e-6)
    assert back.row == pytest.approx(marker.row, abs=1e-6)

    heat = np.zeros(WORKING, dtype=np.float32)
    heat[round(expected.row), round(expected.column)] = 1.0
    source_heat = geometry.heatmap_to_source(heat)
    assert source_heat.shape == image.shape
    peak_row, peak_column = np.unravel_index(np.argmax(source_heat), source_heat.shape)
    assert abs(peak_column - marker.column) <= 2.5 and abs(peak_row - marker.row) <= 2.5


def test_geometry_round_trip_is_exact_everywhere() -> None:
    geometry = Geometry(
        (3328, 2560), True, (100, 0, 3200, 1800), (0.0826, 0.0827), (5, 0), (256, 192)
    )
    for column, row in [(0, 0), (1799.5, 3199), (1234.25, 777.75), (2559, 100)]:
        point = Point(column, row)
        back = geometry.to_source(geometry.to_model(point))
        assert back.column == pytest.approx(column, abs=1e-9)
        assert back.row == pytest.approx(row, abs=1e-9)


def test_crop_finds_the_breast() -> None:
    image = np.zeros((400, 300), dtype=np.float32)
    image[50:350, 0:180] = 0.6
    top, left, bottom, right = breast_bounds(image)
    assert (top, left) == (42, 0) and (bottom, right) == (358, 188)


def test_modality_and_voi_luts_and_monochrome1() -> None:
    ds = mammogram(SyntheticPatient(), rows=64, columns=48)
    plain = display_values(ds, ds.pixel_array)
    assert plain.dtype == np.float32 and plain.min() >= 0.0 and plain.max() <= 1.0
    ds.RescaleSlope, ds.RescaleIntercept = 2, -100
    ds.WindowCenter, ds.WindowWidth = 12000, 8000
    windowed = display_values(ds, ds.pixel_array)
    modality = ds.pixel_array.astype(np.float64) * 2 - 100
    order = np.argsort(modality, axis=None, kind="stable")
    assert np.all(np.diff(windowed.ravel()[order]) >= -1e-6)  # the window is monotonic
    above = modality >= 12000 + 4000
    assert above.any() and np.all(windowed[above] == windowed.max())  # saturated above it
    ds.PhotometricInterpretation = "MONOCHROME1"
    inverted = display_values(ds, ds.pixel_array)
    np.testing.assert_allclose(inverted, 1.0 - windowed, atol=1e-6)


@pytest.mark.parametrize(
    "syntax", [RLELossless, JPEG2000Lossless, JPEGLSLossless], ids=["rle", "jpeg2000", "jpeg-ls"]
)
def test_compressed_inputs_decode_to_the_same_values(syntax: str) -> None:
    ds = mammogram(SyntheticPatient(), rows=64, columns=48)
    reference = display_values(ds, ds.pixel_array)
    ds.compress(syntax)
    np.testing.assert_array_equal(display_values(ds, ds.pixel_array), reference)
