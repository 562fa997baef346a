"""From a stored image to the model's input, keeping the exact way back to source pixels.

Steps: display values as a viewer shows them (Modality LUT, VOI LUT or window, MONOCHROME1
inverted), right-breast views flipped to the left-breast orientation, crop to the breast,
resize into the working size keeping the aspect ratio (padding the rest), normalise.
:class:`Geometry` records each step so points and heatmaps go back to the source grid.

Coordinates are (column, row) pixel centres, as in DICOM SCOORD.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_modality_lut, apply_voi_lut

from models.serving.result import Point

TISSUE_FRACTION = 0.02  # rows/columns with less tissue than this are cropped away
CROP_MARGIN = 8  # pixels kept around the breast


def display_values(ds: Dataset, pixels: np.ndarray) -> np.ndarray:
    """float32 in [0, 1], bright = dense, as a viewer shows the image (the darkest 0.5% of
    pixels, background and noise, go to 0)."""
    values = apply_modality_lut(pixels, ds)
    if "WindowCenter" in ds or "VOILUTSequence" in ds:
        values = apply_voi_lut(values, ds)
    if ds.get("PhotometricInterpretation") == "MONOCHROME1":
        # inverted before scaling, so the percentile trims the background, never the
        # brightest tissue (in MONOCHROME1 that is the lowest stored values)
        values = -values.astype(np.float32)
    return scale_display(values)


def display_grey(display: np.ndarray) -> np.ndarray:
    """Display values in [0, 1] as 8-bit grey: the image as a viewer shows it."""
    scaled = np.multiply(display, 255, dtype=np.float32)
    np.rint(scaled, out=scaled)
    grey: np.ndarray = scaled.astype(np.uint8)
    return grey


def scale_display(values: np.ndarray) -> np.ndarray:
    """Values (after any LUTs) to [0, 1]: the darkest 0.5% to 0, the maximum to 1. Images
    that are not DICOM (PNG training data) go through this too, so they look alike."""
    values = values.astype(np.float32)
    # the top is the maximum, never a percentile: the brightest few pixels of a mammogram are
    # where calcifications are, and clipping them would erase exactly what matters
    low, high = (float(np.percentile(values, 0.5)), float(values.max())) if values.size else (0, 1)
    return np.clip((values - low) / max(float(high - low), 1e-6), 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class Geometry:
    """Source grid -> model grid: flip, crop, scale, pad (and back)."""

    source_shape: tuple[int, int]  # rows, columns
    flipped: bool
    crop: tuple[int, int, int, int]  # top, left, bottom (exclusive), right (exclusive)
    scale: tuple[float, float]  # model pixels per source pixel, rows and columns
    pad: tuple[int, int]  # top, left padding in the model grid
    model_shape: tuple[int, int]

    def to_model(self, point: Point) -> Point:
        column = point.column
        if self.flipped:
            column = self.source_shape[1] - 1 - column
        top, left = self.crop[0], self.crop[1]
        return Point(
            (column - left + 0.5) * self.scale[1] - 0.5 + self.pad[1],
            (point.row - top + 0.5) * self.scale[0] - 0.5 + self.pad[0],
        )

    def to_source(self, point: Point) -> Point:
        top, left = self.crop[0], self.crop[1]
        column = (point.column - self.pad[1] + 0.5) / self.scale[1] - 0.5 + left
        row = (point.row - self.pad[0] + 0.5) / self.scale[0] - 0.5 + top
        if self.flipped:
            column = self.source_shape[1] - 1 - column
        return Point(column, row)

    @property
    def inner_shape(self) -> tuple[int, int]:
        """Rows and columns the cropped image takes in the model grid."""
        top, left, bottom, right = self.crop
        return round((bottom - top) * self.scale[0]), round((right - left) * self.scale[1])

    def content_mask(self) -> np.ndarray:
        """The model-grid pixels that hold the cropped image (the rest is padding)."""
        rows, columns = self.inner_shape
        mask = np.zeros(self.model_shape, dtype=bool)
        mask[self.pad[0] : self.pad[0] + rows, self.pad[1] : self.pad[1] + columns] = True
        return mask

    def heatmap_to_source(self, heatmap: np.ndarray) -> np.ndarray:
        """A model-grid map resampled onto the source grid (zero outside the crop)."""
        top, left, bottom, right = self.crop
        height, width = bottom - top, right - left
        inner = heatmap[
            self.pad[0] : self.pad[0] + round(height * self.scale[0]),
            self.pad[1] : self.pad[1] + round(width * self.scale[1]),
        ]
        resized = _resize(inner.astype(np.float32), (height, width))
        source = np.zeros(self.source_shape, dtype=np.float32)
        source[top:bottom, left:right] = resized
        if self.flipped:
            source = source[:, ::-1]
        return np.ascontiguousarray(source)

    def mask_to_source(self, mask: np.ndarray) -> np.ndarray:
        """A model-grid mask (a lesion outline placed with ``place(..., nearest=True)`` or
        predicted) back on the source grid, nearest-neighbour so it stays a mask (False
        outside the crop)."""
        top, left, bottom, right = self.crop
        rows, columns = self.inner_shape
        inner = np.asarray(mask, dtype=bool)[
            self.pad[0] : self.pad[0] + rows, self.pad[1] : self.pad[1] + columns
        ]
        source = np.zeros(self.source_shape, dtype=bool)
        source[top:bottom, left:right] = _resize_nearest(inner, (bottom - top, right - left))
        if self.flipped:
            source = source[:, ::-1]
        return np.ascontiguousarray(source)


def breast_bounds(image: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box of the tissue: pixels above an Otsu threshold, with a margin."""
    threshold = otsu_threshold(image)
    tissue = image > threshold
    rows = np.flatnonzero(tissue.mean(axis=1) > TISSUE_FRACTION)
    columns = np.flatnonzero(tissue.mean(axis=0) > TISSUE_FRACTION)
    if rows.size == 0 or columns.size == 0:
        return 0, 0, image.shape[0], image.shape[1]
    top = max(int(rows[0]) - CROP_MARGIN, 0)
    bottom = min(int(rows[-1]) + 1 + CROP_MARGIN, image.shape[0])
    left = max(int(columns[0]) - CROP_MARGIN, 0)
    right = min(int(columns[-1]) + 1 + CROP_MARGIN, image.shape[1])
    return top, left, bottom, right


def otsu_threshold(image: np.ndarray, bins: int = 256) -> float:
    histogram, edges = np.histogram(image, bins=bins, range=(0.0, 1.0))
    weights = histogram.astype(np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    below = np.cumsum(weights)
    above = below[-1] - below
    mean_below = np.cumsum(weights * centres) / np.maximum(below, 1)
    total_mean = (weights * centres).sum()
    mean_above = (total_mean - np.cumsum(weights * centres)) / np.maximum(above, 1)
    between = below * above * (mean_below - mean_above) ** 2
    return float(centres[int(np.argmax(between))])


def _resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if image.shape == shape:
        return image.copy()
    resized = Image.fromarray(image.astype(np.float32), mode="F").resize(
        (shape[1], shape[0]), Image.Resampling.BILINEAR
    )
    return np.asarray(resized, dtype=np.float32)


def _resize_nearest(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Each output pixel takes the source pixel under its centre (same pixel-centre convention
    as the bilinear resize and :class:`Geometry`), so a mask keeps its values."""
    rows = ((np.arange(shape[0]) + 0.5) * image.shape[0] / shape[0]).astype(np.intp)
    columns = ((np.arange(shape[1]) + 0.5) * image.shape[1] / shape[1]).astype(np.intp)
    rows = np.minimum(rows, image.shape[0] - 1)
    columns = np.minimum(columns, image.shape[1] - 1)
    resized: np.ndarray = image[np.ix_(rows, columns)]
    return resized


def plan(
    image: np.ndarray,
    laterality: str | None,
    working_size: tuple[int, int],
    crop: bool = True,
) -> Geometry:
    """Where the image goes in the model grid: flip, crop to the breast, scale, pad."""
    flipped = laterality == "R"
    oriented = image[:, ::-1] if flipped else image
    top, left, bottom, right = breast_bounds(oriented) if crop else (0, 0, *image.shape)
    height, width = bottom - top, right - left
    scale = min(working_size[0] / height, working_size[1] / width)
    inner = (max(1, round(height * scale)), max(1, round(width * scale)))
    pad = ((working_size[0] - inner[0]) // 2, 0)  # centred vertically, chest wall kept left
    return Geometry(
        (image.shape[0], image.shape[1]),
        flipped,
        (top, left, bottom, right),
        (inner[0] / height, inner[1] / width),
        pad,
        working_size,
    )


def prepare(
    image: np.ndarray,
    laterality: str | None,
    working_size: tuple[int, int],
    crop: bool = True,
) -> tuple[np.ndarray, Geometry]:
    """Display values in [0, 1] -> model input (working_size, standardised) and geometry,
    on the host (training uses this; the engine does the same on its device)."""
    geometry = plan(image, laterality, working_size, crop)
    return standardise(place(image, geometry)), geometry


def place(image: np.ndarray, geometry: Geometry, *, nearest: bool = False) -> np.ndarray:
    """The image in the model grid (flipped, cropped, resized, padded), before
    standardisation: training augments it here, in display values. ``nearest`` resamples
    nearest-neighbour instead of bilinear: for a lesion mask, which must stay a mask."""
    top, left, bottom, right = geometry.crop
    oriented = image[:, ::-1] if geometry.flipped else image
    inner = geometry.inner_shape
    cropped = oriented[top:bottom, left:right]
    resized = _resize_nearest(cropped, inner) if nearest else _resize(cropped, inner)
    model = np.zeros(geometry.model_shape, dtype=np.float32)
    pad = geometry.pad
    model[pad[0] : pad[0] + inner[0], pad[1] : pad[1] + inner[1]] = resized
    return model


def standardise(model_input: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance over the image (the networks' expected input range)."""
    std = float(model_input.std())
    return ((model_input - float(model_input.mean())) / max(std, 1e-6)).astype(np.float32)
