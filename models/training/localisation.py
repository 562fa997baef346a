"""Evaluation with localisation: the model's marks against the annotated lesions (FROC).

Both sides are compared in the model grid, where the network looks: the marks are the
heatmap's peaks as the node reports them (``findings_from_heatmap``, every peak, whatever
its score, so the curve sweeps the whole range), and the annotations go through the same
placement as the pixels (``models.training.annotations``). A mask counts as a lesion with its
centroid, the radius of a disc of its area, and its bounding box.

Each lesion keeps its annotated type and each image its breast density (the manifest's
``density`` column, or the label itself in a density task), for the per-type and
per-density breakdowns of ``models.training.froc``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from models.serving.findings import findings_from_heatmap
from models.serving.inference import Predictor, ViewPrediction
from models.serving.preprocess import Geometry
from models.training.annotations import (
    Annotation,
    Box,
    Circle,
    Mask,
    load_mask,
    mask_to_model,
    to_model,
)
from models.training.dataset import DENSITIES, DENSITY_TASKS, Row
from models.training.froc import (
    Froc,
    ImageMarks,
    Lesion,
    Mark,
    froc,
    froc_by_density,
    froc_by_lesion_type,
)
from models.training.training_data import PlacedSet


@dataclass(frozen=True)
class Localisation:
    """The FROC of all test images and its breakdowns (``models.training.froc``)."""

    froc: Froc
    by_lesion_type: dict[str, Froc]
    by_density: dict[str, Froc]
    density_images: int  # test images whose density is known

    @classmethod
    def of(cls, images: Sequence[ImageMarks]) -> Localisation:
        """The FROC of the images and its breakdowns, the density groups in ``DENSITIES``
        order; at least one image holds a lesion (``froc`` draws no curve without)."""
        return cls(
            froc(images),
            froc_by_lesion_type(images),
            froc_by_density(images, DENSITIES),
            sum(image.density is not None for image in images),
        )


def lesion_in_model(annotation: Annotation, geometry: Geometry) -> Lesion | None:
    """The annotation as a FROC lesion in the model grid, typed as annotated (None: a mask
    with no pixel left)."""
    lesion = _placed_lesion(annotation, geometry)
    return None if lesion is None else replace(lesion, kind=annotation.lesion_type)


def lesions_in_model(row: Row, geometry: Geometry) -> list[Lesion]:
    return [
        lesion
        for annotation in row.annotations
        if (lesion := lesion_in_model(annotation, geometry)) is not None
    ]


def marks_of(prediction: ViewPrediction) -> list[Mark]:
    """Every heatmap peak as a mark (threshold 0: the FROC sweeps all scores)."""
    found = findings_from_heatmap(prediction.heatmap, prediction.score, threshold=0.0)
    return [Mark(f.region.center.column, f.region.center.row, f.score) for f in found]


def image_density(row: Row, task: str) -> str | None:
    """The row's density column, else its label where the task is a density task."""
    if row.density is not None:
        return row.density
    return row.label if task in DENSITY_TASKS else None


def _placed_lesion(annotation: Annotation, geometry: Geometry) -> Lesion | None:
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


def localisation(engine: Predictor, placed: PlacedSet, rows: Sequence[Row]) -> Localisation | None:
    """The FROC of the test images and its breakdowns (None when no row carries an
    annotation). Images without annotations count too: their marks are false marks."""
    if not any(row.annotations for row in rows):
        return None
    task = engine.manifest.task
    images: list[ImageMarks] = []
    for part, batch in placed.batches(engine.batch_size):
        for offset, prediction in enumerate(engine.predict(list(batch))):
            row = rows[part.start + offset]
            lesions = lesions_in_model(row, placed.geometries[part.start + offset])
            images.append(ImageMarks(marks_of(prediction), lesions, image_density(row, task)))
    if not any(image.lesions for image in images):
        return None
    return Localisation.of(images)
