"""Evaluation with localisation: the model's marks against the annotated lesions (FROC).

Both sides are compared in the model grid, where the network looks: the marks are the
heatmap's peaks as the node reports them (``findings_from_heatmap``, every peak, whatever
its score, so the curve sweeps the whole range), and the annotations go through the same
placement as the pixels (``models.annotations``). A mask counts as a lesion with its
centroid, the radius of a disc of its area, and its bounding box.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.annotations import Annotation, Box, Circle, Mask, load_mask, mask_to_model, to_model
from models.dataset import Row
from models.findings import findings_from_heatmap
from models.froc import Froc, ImageMarks, Lesion, Mark, froc
from models.inference import Engine
from models.preprocess import Geometry
from models.training_data import PlacedSet


def lesion_in_model(annotation: Annotation, geometry: Geometry) -> Lesion | None:
    """The annotation as a FROC lesion in the model grid (None: a mask with no pixel left)."""
    shape = annotation.shape
    if isinstance(shape, Mask):
        return _mask_lesion(load_mask(Path(shape.path)), geometry)
    placed = to_model(shape, geometry)
    if isinstance(placed, Circle):
        return Lesion(placed.column, placed.row, placed.radius)
    assert isinstance(placed, Box)
    half_diagonal = math.hypot(placed.right - placed.left, placed.bottom - placed.top) / 2
    return Lesion(
        (placed.left + placed.right) / 2,
        (placed.top + placed.bottom) / 2,
        half_diagonal,
        box=(placed.left, placed.top, placed.right, placed.bottom),
    )


def _mask_lesion(mask: np.ndarray, geometry: Geometry) -> Lesion | None:
    placed = mask_to_model(mask, geometry)
    rows, columns = np.nonzero(placed)
    if rows.size == 0:
        return None
    box = (float(columns.min()), float(rows.min()), float(columns.max()), float(rows.max()))
    radius = math.sqrt(rows.size / math.pi)
    return Lesion(float(columns.mean()), float(rows.mean()), radius, box=box)


def localisation(engine: Engine, placed: PlacedSet, rows: Sequence[Row]) -> Froc | None:
    """The FROC of the test images (None when no row carries an annotation). Images
    without annotations count too: their marks are false marks."""
    if not any(row.annotations for row in rows):
        return None
    images: list[ImageMarks] = []
    for part, batch in placed.batches(engine.batch_size):
        for offset, prediction in enumerate(engine.predict(list(batch))):
            index = part.start + offset
            found = findings_from_heatmap(prediction.heatmap, prediction.score, threshold=0.0)
            marks = [Mark(f.region.center.column, f.region.center.row, f.score) for f in found]
            geometry = placed.geometries[index]
            lesions = [
                lesion
                for annotation in rows[index].annotations
                if (lesion := lesion_in_model(annotation, geometry)) is not None
            ]
            images.append(ImageMarks(marks, lesions))
    if not any(image.lesions for image in images):
        return None
    return froc(images)
