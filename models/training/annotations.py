"""Lesion annotations of a training image, in its source pixels, and their way through placement.

Public datasets outline their lesions three ways: mini-MIAS as circles, CBIS-DDSM as ROI mask
images (one per abnormality), VinDr-Mammo as boxes. Each becomes an :class:`Annotation` with
the lesion's type and pathology where the dataset gives them. Coordinates are (column, row)
with (0, 0) the centre of the top-left pixel, as everywhere in ``models`` (DICOM SCOORD); a
reader converts its dataset's own convention (mini-MIAS counts rows from the bottom).

In the manifest, an image's annotations are one ``annotations`` cell holding a compact JSON
list (empty for none). A column rather than a side file because the manifest then stays one
CSV with one row per image: rows stay self-contained when tools filter them or rewrite them
with their splits (``split.csv``), there is no second file to keep in step by path, and
manifests written before the column existed still load (no column = no annotations). JSON
because a row may hold any number of lesions of different shapes. Cells look like::

    [{"circle": [535, 598, 197], "type": "mass", "pathology": "benign"},
     {"box": [100.5, 200, 180, 260.5], "type": "calcification"},
     {"mask": "Mass-Training_P_00001_LEFT_CC_1/1.3.6/1.3.6/000000.dcm", "pathology": "malignant"}]

A circle is [column, row, radius], a box [left, top, right, bottom] (continuous coordinates
in the same pixel-centre convention), a mask the path of a mask image with the source's
rows and columns (non-zero = lesion), relative to the manifest's folder where it can be.

Circles and boxes map to the model grid and back exactly (:func:`to_model`,
:func:`to_source`); a mask goes through ``place`` itself, nearest-neighbour
(:func:`mask_to_model`, :func:`mask_to_source`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.serving.preprocess import Geometry, place
from models.serving.result import LESION_TYPES, Point

PATHOLOGIES = ("benign", "malignant")


@dataclass(frozen=True)
class Circle:
    column: float
    row: float
    radius: float


@dataclass(frozen=True)
class Box:
    left: float
    top: float
    right: float
    bottom: float


@dataclass(frozen=True)
class Mask:
    path: Path  # a mask image on the source grid; non-zero pixels are the lesion


@dataclass(frozen=True)
class Annotation:
    shape: Circle | Box | Mask
    lesion_type: str | None = None  # one of LESION_TYPES, or None where the dataset has none
    pathology: str | None = None  # one of PATHOLOGIES, or None

    def __post_init__(self) -> None:
        if self.lesion_type is not None and self.lesion_type not in LESION_TYPES:
            raise ValueError(f"lesion type {self.lesion_type!r} is not one of {LESION_TYPES}")
        if self.pathology is not None and self.pathology not in PATHOLOGIES:
            raise ValueError(f"pathology {self.pathology!r} is not one of {PATHOLOGIES}")


# --- the manifest cell ----------------------------------------------------------------------


def encode(annotations: Sequence[Annotation], base: Path | None = None) -> str:
    """The manifest cell: compact JSON, "" for none; mask paths relative to ``base`` if under it."""
    if not annotations:
        return ""
    items: list[dict[str, Any]] = []
    for annotation in annotations:
        shape = annotation.shape
        item: dict[str, Any]
        if isinstance(shape, Circle):
            item = {"circle": [_number(shape.column), _number(shape.row), _number(shape.radius)]}
        elif isinstance(shape, Box):
            item = {"box": [_number(v) for v in (shape.left, shape.top, shape.right, shape.bottom)]}
        else:
            path = shape.path.resolve() if base is not None else shape.path
            if base is not None and path.is_relative_to(base):
                path = path.relative_to(base)
            item = {"mask": path.as_posix()}
        if annotation.lesion_type is not None:
            item["type"] = annotation.lesion_type
        if annotation.pathology is not None:
            item["pathology"] = annotation.pathology
        items.append(item)
    return json.dumps(items, separators=(",", ":"))


def decode(cell: str, base: Path) -> tuple[Annotation, ...]:
    """A manifest cell back to annotations (relative mask paths under ``base``).

    Raises ValueError saying what is wrong; the manifest reader adds the row.
    """
    if not cell.strip():
        return ()
    try:
        items = json.loads(cell)
    except json.JSONDecodeError as exc:
        raise ValueError(f"annotations are not JSON: {exc}") from None
    if not isinstance(items, list):
        raise ValueError("annotations are not a JSON list")
    return tuple(_annotation(item, base) for item in items)


def _annotation(item: object, base: Path) -> Annotation:
    if not isinstance(item, dict):
        raise ValueError(f"annotation {item!r} is not an object")
    shapes = [key for key in ("circle", "box", "mask") if key in item]
    if len(shapes) != 1:
        raise ValueError(f"annotation {item!r} needs exactly one of circle, box or mask")
    value = item[shapes[0]]
    shape: Circle | Box | Mask
    if shapes[0] == "mask":
        if not isinstance(value, str) or not value:
            raise ValueError(f"mask {value!r} is not a path")
        path = Path(value)
        shape = Mask(path if path.is_absolute() else base / path)
    else:
        size = 3 if shapes[0] == "circle" else 4
        if not (
            isinstance(value, list)
            and len(value) == size
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
            and all(math.isfinite(v) for v in value)
        ):
            raise ValueError(f"{shapes[0]} {value!r} is not {size} numbers")
        numbers = [float(v) for v in value]
        if shapes[0] == "circle":
            if numbers[2] <= 0:
                raise ValueError(f"circle {value!r} has no positive radius")
            shape = Circle(*numbers)
        else:
            if numbers[2] < numbers[0] or numbers[3] < numbers[1]:
                raise ValueError(f"box {value!r} is not left, top, right, bottom")
            shape = Box(*numbers)
    lesion_type, pathology = item.get("type"), item.get("pathology")
    for name, text in (("type", lesion_type), ("pathology", pathology)):
        if text is not None and not isinstance(text, str):
            raise ValueError(f"{name} {text!r} is not text")
    return Annotation(shape, lesion_type, pathology)


def _number(value: float) -> float | int:
    """Whole numbers written without ".0", so cells stay short."""
    return int(value) if float(value).is_integer() else float(value)


# --- placement ------------------------------------------------------------------------------


def _radius_scale(geometry: Geometry) -> float:
    """Model pixels per source pixel for a length: rows and columns scale alike up to rounding
    of the inner size (well under 1%), so a circle stays a circle at their mean."""
    return (geometry.scale[0] + geometry.scale[1]) / 2


def to_model(shape: Circle | Box, geometry: Geometry) -> Circle | Box:
    """A circle or box from source pixels to model-input pixels (flip, crop, scale, pad)."""
    if isinstance(shape, Circle):
        centre = geometry.to_model(Point(shape.column, shape.row))
        return Circle(centre.column, centre.row, shape.radius * _radius_scale(geometry))
    return _box(geometry.to_model, shape)


def to_source(shape: Circle | Box, geometry: Geometry) -> Circle | Box:
    """The inverse of :func:`to_model`: model-input pixels back to source pixels."""
    if isinstance(shape, Circle):
        centre = geometry.to_source(Point(shape.column, shape.row))
        return Circle(centre.column, centre.row, shape.radius / _radius_scale(geometry))
    return _box(geometry.to_source, shape)


def _box(mapping: Any, box: Box) -> Box:
    # a flip swaps left and right, so the corners are sorted again after mapping
    first: Point = mapping(Point(box.left, box.top))
    second: Point = mapping(Point(box.right, box.bottom))
    return Box(
        min(first.column, second.column),
        min(first.row, second.row),
        max(first.column, second.column),
        max(first.row, second.row),
    )


def mask_to_model(mask: np.ndarray, geometry: Geometry) -> np.ndarray:
    """A source-grid lesion mask on the model grid, placed like the pixels (nearest-neighbour,
    so it stays a mask and no lesion pixel is smeared into the padding)."""
    placed = place(np.asarray(mask, dtype=np.float32), geometry, nearest=True)
    result: np.ndarray = placed > 0.5
    return result


def mask_to_source(mask: np.ndarray, geometry: Geometry) -> np.ndarray:
    """A model-grid mask back on the source grid (nearest-neighbour; False outside the crop)."""
    return geometry.mask_to_source(mask)


def load_mask(path: Path) -> np.ndarray:
    """A mask image (DICOM, as CBIS-DDSM publishes them, or PNG) as booleans, non-zero = lesion."""
    if path.suffix.lower() in {".png", ".pgm", ".jpg", ".jpeg", ".tif", ".tiff"}:
        from PIL import Image

        with Image.open(path) as image:
            pixels = np.asarray(image)
    else:
        from pydicom import dcmread

        pixels = dcmread(path).pixel_array
    if pixels.ndim == 3:
        pixels = pixels.max(axis=-1)
    result: np.ndarray = pixels > 0
    return result
