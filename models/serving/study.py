"""From the 2D images of one study to its typed result: preprocess, infer in one batch, map
heatmaps and findings back to source pixels, combine views into breasts and the study.

Several 2D images may come from one source instance (tomosynthesis slabs): the instance's
score is its best slab's, and its heatmap, findings and frame are that slab's. A projection
of a volume (MRI) is referenced to the slice where its strongest finding's enhancement
peaks, not to a slice chosen before the analysis.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from models.serving.aggregate import breasts, study_score
from models.serving.findings import findings_from_heatmap
from models.serving.inference import Predictor, ViewPrediction
from models.serving.preprocess import Geometry, display_grey, plan
from models.serving.result import (
    FINDING_KIND_OF_TYPE,
    Finding,
    ImageResult,
    ModelInfo,
    Point,
    Region,
    StudyResult,
)

# findings closer than this fraction of the model grid's larger side are one finding
# (12 px at the demo's 128 x 96, about 5 mm on its phantoms)
FINDING_SEPARATION = 0.094


@dataclass(frozen=True)
class SliceStack:
    """Where a projection's pixels come from (MRI): the instance and frame holding each slice
    of the projected volume, in volume order, the slice of each pixel's maximum, and how the
    pixel grid lies in the patient, so a finding names its slice and its breast."""

    references: tuple[tuple[str, int | None], ...]  # (SOP Instance UID, frame or None)
    peak_slice: np.ndarray  # (rows, columns): index into ``references``
    # millimetres toward the patient's left (+x in DICOM's LPS) per column and per row step,
    # from Image Orientation (Patient) and Pixel Spacing; None when the plane has no
    # left-right axis (a sagittal slice: its breast is not told apart by column)
    left_per_pixel: tuple[float, float] | None
    # the patient x (mm) of the midline: the centre of the imaged field, from Image Position
    midline_x: float = 0.0
    origin_x: float = 0.0  # the patient x (mm) of the first pixel's centre

    def slice_at(self, projection: np.ndarray, centre: Point, reach: int = 2) -> int:
        """The slice of the strongest projection pixel within ``reach`` of ``centre``."""
        rows, columns = projection.shape
        row = min(max(round(centre.row), 0), rows - 1)
        column = min(max(round(centre.column), 0), columns - 1)
        top, left = max(row - reach, 0), max(column - reach, 0)
        window = projection[top : row + reach + 1, left : column + reach + 1]
        r, c = np.unravel_index(int(np.argmax(window)), window.shape)
        return int(self.peak_slice[top + r, left + c])

    def laterality_at(self, centre: Point) -> str | None:
        """The patient's side of ``centre``: left where its patient x is greater than the
        midline's (+x points to the patient's left)."""
        if self.left_per_pixel is None:
            return None
        per_column, per_row = self.left_per_pixel
        x = self.origin_x + centre.column * per_column + centre.row * per_row
        return "L" if x > self.midline_x else "R"


@dataclass(frozen=True)
class AnalysisImage:
    """One 2D image for the network, in display values [0, 1] on its source pixel grid."""

    sop_instance_uid: str
    image: np.ndarray
    laterality: str | None = None
    view: str | None = None
    frame: int | None = None  # tomosynthesis: the slab's centre frame (1-based)
    display_image: np.ndarray | None = field(default=None, compare=False)  # MRI projection
    crop: bool = True
    # a bilateral image (axial breast MRI): True when the patient's right is on the low
    # columns (the left half of the image); each half then gives its breast's score
    right_on_low_columns: bool | None = None
    # a projection (MRI): the slices behind it; the result then references the slice where
    # its strongest finding's enhancement peaks, and each finding names its breast
    slices: SliceStack | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ImagePrediction:
    image: AnalysisImage
    geometry: Geometry
    prediction: ViewPrediction


def model_info(engine: Predictor) -> ModelInfo:
    manifest = engine.manifest
    return ModelInfo(
        manifest.name,
        manifest.version,
        manifest.validated_for_clinical_use,
        manifest.operating_threshold,
        finding_kinds=tuple(FINDING_KIND_OF_TYPE[name] for name in engine.lesion_types),
    )


def predict_images(engine: Predictor, images: Sequence[AnalysisImage]) -> list[ImagePrediction]:
    """Place every image (host), then resize and run them on the device in shared batches."""
    geometries = [plan(i.image, i.laterality, engine.working_size, crop=i.crop) for i in images]
    predictions = engine.predict_images([i.image for i in images], geometries)
    return [
        ImagePrediction(image, geometry, prediction)
        for image, geometry, prediction in zip(images, geometries, predictions, strict=True)
    ]


def _to_source(finding: Finding, geometry: Geometry) -> Finding:
    points = tuple(geometry.to_source(p) for p in finding.region.points)
    return replace(finding, region=Region(finding.region.shape, points))


def _on_slices(
    image: AnalysisImage, findings: tuple[Finding, ...], heatmap: np.ndarray
) -> tuple[str, int | None, tuple[Finding, ...]]:
    """A projection's reference (instance, frame) and findings: each finding on the slice
    where the enhancement under it peaks, with its breast; the reference is the strongest
    finding's slice (or, with none, the slice under the heatmap's peak)."""
    stack = image.slices
    if stack is None:
        return image.sop_instance_uid, image.frame, findings
    placed = []
    for finding in findings:
        uid, frame = stack.references[stack.slice_at(image.image, finding.region.center)]
        side = stack.laterality_at(finding.region.center)
        placed.append((uid, replace(finding, frame=frame, laterality=side)))
    if placed:
        uid, strongest = max(placed, key=lambda item: item[1].score)
        return uid, strongest.frame, tuple(finding for _, finding in placed)
    row, column = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    uid, frame = stack.references[stack.slice_at(image.image, Point(float(column), float(row)))]
    return uid, frame, ()


def _shown(image: AnalysisImage) -> np.ndarray | None:
    """A 2D image's network input is its display values; a slab's or projection's is not."""
    if image.frame is None and image.display_image is None:
        return display_grey(image.image)
    return None


def image_result(
    predicted: ImagePrediction,
    threshold: float,
    kind: str,
    lesion_types: Sequence[str] = (),
) -> ImageResult:
    """One image's result. ``kind`` names its findings unless the checkpoint knows
    ``lesion_types``: then each finding is of the type the model reads at its peak."""
    image, geometry, prediction = predicted.image, predicted.geometry, predicted.prediction
    # evidence in the padding is no finding: it lies outside the image (or the breast crop)
    evidence = np.where(geometry.content_mask(), prediction.heatmap, 0.0)
    found = findings_from_heatmap(
        evidence,
        prediction.score,
        threshold,
        kind=kind,
        min_distance=max(2, round(FINDING_SEPARATION * max(prediction.heatmap.shape))),
        frame=image.frame,
    )
    if lesion_types:
        found = tuple(_typed(finding, prediction, lesion_types) for finding in found)
    heatmap = geometry.heatmap_to_source(evidence * prediction.score)
    uid, frame, located = _on_slices(image, tuple(_to_source(f, geometry) for f in found), heatmap)
    return ImageResult(
        uid,
        np.clip(heatmap, 0.0, 1.0),
        located,
        image.laterality,
        image.view,
        frame=frame,
        display_image=image.display_image,
        display_grey=_shown(image),
    )


def _typed(finding: Finding, prediction: ViewPrediction, names: Sequence[str]) -> Finding:
    """The finding (model grid) named for the lesion type the model reads at its centre."""
    centre = finding.region.center
    lesion_type = prediction.lesion_type_at(names, centre.column, centre.row)
    return replace(finding, kind=FINDING_KIND_OF_TYPE[lesion_type]) if lesion_type else finding


def best_per_instance(predicted: Sequence[ImagePrediction]) -> list[ImagePrediction]:
    """One prediction per source instance (its highest-scoring slab), in first-seen order."""
    best: dict[str, ImagePrediction] = {}
    for item in predicted:
        uid = item.image.sop_instance_uid
        if uid not in best or item.prediction.score > best[uid].prediction.score:
            best[uid] = item
    return list(best.values())


def bilateral_scores(result: ImageResult, right_on_low_columns: bool) -> dict[str, list[float]]:
    """A bilateral image's breast scores: the strongest (score-weighted) evidence in each
    half of its source-grid heatmap."""
    middle = result.heatmap.shape[1] // 2
    low, high = float(result.heatmap[:, :middle].max()), float(result.heatmap[:, middle:].max())
    right, left = (low, high) if right_on_low_columns else (high, low)
    return {"R": [right], "L": [left]}


def analyse_images(
    engine: Predictor,
    study_instance_uid: str,
    images: Sequence[AnalysisImage],
    kind: str = "suspicious region",
) -> StudyResult:
    [result] = analyse_studies(engine, [(study_instance_uid, images)], kind)
    return result


def analyse_studies(
    engine: Predictor,
    studies: Sequence[tuple[str, Sequence[AnalysisImage]]],
    kind: str = "suspicious region",
) -> list[StudyResult]:
    """Several studies' images through the network in shared batches; one result each."""
    if any(not images for _, images in studies):
        raise ValueError("a study analysis needs at least one image")
    predicted = predict_images(engine, [image for _, images in studies for image in images])
    results, start = [], 0
    for uid, images in studies:
        mine = predicted[start : start + len(images)]
        start += len(images)
        results.append(study_result(model_info(engine), uid, mine, kind, engine.lesion_types))
    return results


def study_result(
    info: ModelInfo,
    study_instance_uid: str,
    predicted: Sequence[ImagePrediction],
    kind: str,
    lesion_types: Sequence[str] = (),
) -> StudyResult:
    chosen = best_per_instance(predicted)
    results = tuple(image_result(p, info.operating_threshold, kind, lesion_types) for p in chosen)
    per_side: dict[str, list[float]] = defaultdict(list)
    for item, result in zip(chosen, results, strict=True):
        if item.image.laterality in {"L", "R"}:
            per_side[item.image.laterality].append(item.prediction.score)
        elif item.image.right_on_low_columns is not None:
            for side, scores in bilateral_scores(result, item.image.right_on_low_columns).items():
                per_side[side].extend(scores)
    breast_results = breasts(per_side, info.operating_threshold)
    overall = (
        study_score(breast_results)
        if breast_results
        else max(item.prediction.score for item in chosen)
    )
    return StudyResult(study_instance_uid, results, breast_results, round(overall, 4), info)
