"""Which slice and which breast a finding on an MRI projection names: from the slices'
Image Orientation (Patient), Image Position (Patient) and Pixel Spacing, never from where
the columns are assumed to run."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset

from models.serving.result import Point
from models.serving.sources import slice_stack


def axial(number: int, orientation: list[float], z: float) -> Dataset:
    ds = Dataset()
    ds.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.{number}"
    ds.ImageOrientationPatient = orientation
    ds.PixelSpacing = [2.0, 2.0]
    # 10 x 10 pixels centred on the patient's midline (x = 0)
    row, column = np.array(orientation[:3]), np.array(orientation[3:])
    ds.ImagePositionPatient = list(-9.0 * row - 9.0 * column + [0.0, 0.0, z])
    return ds


def test_the_slice_is_where_the_projection_peaks_in_volume_order() -> None:
    # written out of order: the stack orders the slices along their normal
    datasets = [axial(n, [1, 0, 0, 0, 1, 0], z) for n, z in ((1, 6.0), (2, 0.0), (3, 3.0))]
    peaks = np.zeros((10, 10), dtype=np.int32)
    peaks[6, 2] = 2  # the strongest pixel near (2, 6) peaks on the third slice (z = 6)
    projection = np.zeros((10, 10), dtype=np.float32)
    projection[6, 2] = 1.0
    stack = slice_stack(datasets, peaks)
    assert [uid for uid, _ in stack.references] == [
        datasets[1].SOPInstanceUID, datasets[2].SOPInstanceUID, datasets[0].SOPInstanceUID
    ]  # fmt: skip
    assert stack.references[stack.slice_at(projection, Point(3.0, 5.0))] == (
        datasets[0].SOPInstanceUID,
        None,
    )


def test_the_breast_follows_the_orientation() -> None:
    peaks = np.zeros((10, 10), dtype=np.int32)
    low_columns, high_columns = Point(1.0, 5.0), Point(8.0, 5.0)
    to_left = slice_stack([axial(1, [1, 0, 0, 0, 1, 0], 0.0)], peaks)
    assert to_left.laterality_at(low_columns) == "R" and to_left.laterality_at(high_columns) == "L"
    to_right = slice_stack([axial(1, [-1, 0, 0, 0, 1, 0], 0.0)], peaks)
    assert to_right.laterality_at(low_columns) == "L"
    assert to_right.laterality_at(high_columns) == "R"
    # rows running left-right: the top rows are the patient's right
    transposed = slice_stack([axial(1, [0, 1, 0, 1, 0, 0], 0.0)], peaks)
    assert transposed.laterality_at(Point(5.0, 1.0)) == "R"
    assert transposed.laterality_at(Point(5.0, 8.0)) == "L"
    # a sagittal slice has no left-right axis: its columns do not tell the breasts apart
    sagittal = slice_stack([axial(1, [0, 1, 0, 0, 0, -1], 0.0)], peaks)
    assert sagittal.left_per_pixel is None and sagittal.laterality_at(low_columns) is None
