"""The TID 1500 Measurement Report in a Comprehensive 3D SR (IHE AI Results), with highdicom.

Shaped so that viewers draw it, OHIF (3.13) included, whose SR reader fails on a group
without coordinates and rehydrates only groups shaped as its own tools write them. Every
group is a measurement group (TID 1501) whose score (TID 300) is INFERRED FROM a region on
a source image. Per breast: a group whose region is the extent of the image the breast was
assessed on, with the malignancy score and the category; a study whose images name no
single breast gets one such study-level group instead. Per finding: a group whose region is
the finding's bounding box (a point stays a point), with the finding's type, site, score
and category. Boxes and points are the shapes OHIF both draws and rehydrates (its
RectangleROI and Probe tools); the exact outline and centre are in the Mammography CAD SR,
the overlays and the presentation states. Each group says in a Comment what it found
("Mass (left breast): 0.86, suspicious for malignancy"), the label OHIF shows. The
algorithm is named in the observer context and in every group's Algorithm Identification.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from models.serving import (
    BreastResult,
    Category,
    Finding,
    ImageResult,
    Shape,
    StudyResult,
    category,
)
from node.results.provenance import ResultContext, label_like_sources, sr_arguments

PROBABILITY_OF_CANCER = codes.DCM.ProbabilityOfCancer
NO_UNITS = hd.sr.CodedConcept("1", "UCUM", "no units")
ASSESSMENT = hd.sr.CodedConcept("111037", "DCM", "Overall Assessment")
BREAST_SITE = {"L": codes.SCT.LeftBreast, "R": codes.SCT.RightBreast}
CATEGORY_CODES = {
    Category.NORMAL: hd.sr.CodedConcept("17621005", "SCT", "Normal"),
    Category.BENIGN: hd.sr.CodedConcept("30807003", "SCT", "Benign"),
    Category.SUSPICIOUS: hd.sr.CodedConcept("444814009", "SCT", "Suspicious for malignancy"),
}
# what a finding of each kind is (models.serving.result.FINDING_KIND_OF_TYPE names them): the
# concepts of CID 6014/6016 (Mammography Single Image Finding / Composite Feature), a mass
# as SNOMED's plain Mass, which OHIF and dsr2html print as the finding's type
FINDING_TYPES = {
    "mass": hd.sr.CodedConcept("4147007", "SCT", "Mass"),
    "calcification cluster": hd.sr.CodedConcept("129769006", "SCT", "Calcification Cluster"),
    "architectural distortion": hd.sr.CodedConcept(
        "129792006", "SCT", "Architectural distortion of breast"
    ),
    "asymmetry": hd.sr.CodedConcept("129789007", "SCT", "Focal asymmetric breast tissue"),
}
GENERIC_FINDING = hd.sr.CodedConcept("121071", "DCM", "Finding")
PROCEDURES = {
    "MR": hd.sr.CodedConcept("241615005", "SCT", "Magnetic resonance imaging of breast"),
    "MG": hd.sr.CodedConcept("71651007", "SCT", "Mammography"),
}
SIDE_NAMES = {"L": "Left breast", "R": "Right breast"}
# BI-RADS breast composition as DICOM codes it (CID 6000 Overall Breast Composition)
COMPOSITION_CODES = {
    "a": codes.SCT.AlmostEntirelyFat,
    "b": codes.SCT.ScatteredFibroglandularDensities,
    "c": codes.SCT.HeterogeneouslyDense,
    "d": codes.SCT.ExtremelyDense,
}
CORNERSTONE = "Cornerstone3DTools@^0.1.0"
CORNERSTONE_TOOLS = {
    hd.sr.GraphicTypeValues.POINT: f"{CORNERSTONE}:Probe",
    hd.sr.GraphicTypeValues.POLYLINE: f"{CORNERSTONE}:RectangleROI",
}


def algorithm(result: StudyResult) -> hd.sr.AlgorithmIdentification:
    return hd.sr.AlgorithmIdentification(name=result.model.name, version=result.model.version)


def extent(finding: Finding) -> tuple[float, float, float, float]:
    """The finding region's bounding box: left, top, right, bottom (columns and rows)."""
    region = finding.region
    if region.shape is Shape.ELLIPSE:
        # an ellipse's extent from its two semi-axis vectors u and v: sqrt(u^2 + v^2) per axis
        first, second, third, fourth = region.points
        u = ((second.column - first.column) / 2, (second.row - first.row) / 2)
        v = ((fourth.column - third.column) / 2, (fourth.row - third.row) / 2)
        centre = region.center
        half_width, half_height = math.hypot(u[0], v[0]), math.hypot(u[1], v[1])
        return (
            centre.column - half_width,
            centre.row - half_height,
            centre.column + half_width,
            centre.row + half_height,
        )
    columns = [p.column for p in region.points]
    rows = [p.row for p in region.points]
    return min(columns), min(rows), max(columns), max(rows)


def box(left: float, top: float, right: float, bottom: float) -> np.ndarray:
    """A closed POLYLINE rectangle, clockwise from the top left, ending where it starts."""
    corners = [(left, top), (right, top), (right, bottom), (left, bottom), (left, top)]
    return np.array(corners, dtype=np.float32)


def graphic(finding: Finding, source: Dataset) -> tuple[hd.sr.GraphicTypeValues, np.ndarray]:
    """A point as a POINT; any other region as its bounding box, clipped to the image."""
    if finding.region.shape is Shape.POINT:
        point = finding.region.points[0]
        return hd.sr.GraphicTypeValues.POINT, np.array([[point.column, point.row]], np.float32)
    left, top, right, bottom = extent(finding)
    last_column, last_row = float(source.Columns) - 1, float(source.Rows) - 1
    clipped = (
        min(max(left, 0.0), last_column),
        min(max(top, 0.0), last_row),
        min(max(right, 0.0), last_column),
        min(max(bottom, 0.0), last_row),
    )
    return hd.sr.GraphicTypeValues.POLYLINE, box(*clipped)


def whole_image(source: Dataset) -> np.ndarray:
    return box(0.0, 0.0, float(source.Columns) - 1, float(source.Rows) - 1)


def _score_measurement(
    score: float, result: StudyResult, where: hd.sr.CoordinatesForMeasurement
) -> hd.sr.Measurement:
    return hd.sr.Measurement(
        name=PROBABILITY_OF_CANCER,
        value=round(score, 4),
        unit=NO_UNITS,
        algorithm_id=algorithm(result),
        referenced_coordinates=[where],
    )


def label(what: str, score: float, verdict: Category) -> str:
    """What a group found, in the words a reader (and OHIF's label) shows."""
    return f"{what}: {score:.2f}, {verdict.value}"


def tracking(
    context: ResultContext, graphic_type: hd.sr.GraphicTypeValues, name: str
) -> hd.sr.TrackingIdentifier:
    """A new tracking UID, and an identifier that starts with the OHIF (Cornerstone3D) tool
    that can show and edit the region (``Cornerstone3DTools@^0.1.0:RectangleROI:Finding 1``):
    OHIF rehydrates a group into its measurement panel only through that prefix."""
    tool = CORNERSTONE_TOOLS[graphic_type]
    return hd.sr.TrackingIdentifier(uid=context.new_uid(), identifier=f"{tool}:{name}")


def _with_comment(
    group: hd.sr.MeasurementsAndQualitativeEvaluations, text: str
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    comment = hd.sr.TextContentItem(
        name=codes.DCM.Comment,
        value=text,
        relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
    )
    group[0].ContentSequence.append(comment)
    return group


def _coordinates(
    graphic_type: hd.sr.GraphicTypeValues,
    data: np.ndarray,
    source: Dataset,
    frame: int | None,
) -> hd.sr.CoordinatesForMeasurement:
    """The region a score is INFERRED FROM, on its source image (and frame)."""
    frames = [frame] if frame and int(source.get("NumberOfFrames", 1) or 1) > 1 else None
    return hd.sr.CoordinatesForMeasurement(
        graphic_type=graphic_type,
        graphic_data=data,
        source_image=hd.sr.SourceImageForRegion.from_source_image(
            source, referenced_frame_numbers=frames
        ),
    )


def assessment_group(
    what: str,
    laterality: str | None,
    score: float,
    verdict: Category,
    image: ImageResult,
    source: Dataset,
    result: StudyResult,
    context: ResultContext,
    composition: str | None = None,
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    """A breast's (or, with no laterality, the study's) score and category, over the extent
    of the image it was assessed on."""
    polyline = hd.sr.GraphicTypeValues.POLYLINE
    where = _coordinates(polyline, whole_image(source), source, image.frame)
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking(context, polyline, what),
        finding_type=codes.SCT.Breast,
        finding_sites=[hd.sr.FindingSite(BREAST_SITE[laterality])] if laterality else None,
        algorithm_id=algorithm(result),
        measurements=[_score_measurement(score, result, where)],
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(ASSESSMENT, CATEGORY_CODES[verdict])]
        + (
            [
                hd.sr.QualitativeEvaluation(
                    codes.SCT.BreastComposition, COMPOSITION_CODES[composition]
                )
            ]
            if composition
            else []
        ),
    )
    text = label(what, score, verdict)
    if composition:
        text += f"; breast composition {composition} ({COMPOSITION_CODES[composition].meaning})"
    return _with_comment(group, text)


def breast_group(
    breast: BreastResult,
    result: StudyResult,
    context: ResultContext,
    sources: Mapping[str, Dataset],
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    image = assessed_image(result, breast.laterality)
    return assessment_group(
        SIDE_NAMES[breast.laterality],
        breast.laterality,
        breast.score,
        breast.category,
        image,
        sources[image.sop_instance_uid],
        result,
        context,
        breast.composition,
    )


def study_group(
    result: StudyResult, context: ResultContext, sources: Mapping[str, Dataset]
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    image = assessed_image(result, None)
    verdict = category(result.overall_score, result.model.operating_threshold)
    return assessment_group(
        "Study",
        None,
        result.overall_score,
        verdict,
        image,
        sources[image.sop_instance_uid],
        result,
        context,
    )


def assessed_image(result: StudyResult, laterality: str | None) -> ImageResult:
    """The image a breast's group is drawn on: its CC view where it has one (the view a
    reader opens first), else its first image; an image of both breasts (the MRI
    projection) serves either; with no laterality, the study's first image."""
    images = [i for i in result.images if i.laterality == laterality] or [
        i for i in result.images if i.laterality is None
    ]
    if laterality is None or not images:
        images = images or list(result.images)
    if not images:
        raise ValueError("a report needs at least one analysed image")
    return next((i for i in images if i.view == "CC"), images[0])


def finding_group(
    number: int,
    finding: Finding,
    image: ImageResult,
    source: Dataset,
    result: StudyResult,
    context: ResultContext,
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    graphic_type, data = graphic(finding, source)
    laterality = finding.laterality or image.laterality
    kind = FINDING_TYPES.get(finding.kind, GENERIC_FINDING)
    verdict = category(finding.score, result.model.operating_threshold)
    where = _coordinates(graphic_type, data, source, finding.frame)
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking(context, graphic_type, f"Finding {number}"),
        finding_type=kind,
        finding_sites=[hd.sr.FindingSite(BREAST_SITE[laterality])] if laterality else None,
        algorithm_id=algorithm(result),
        measurements=[_score_measurement(finding.score, result, where)],
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(ASSESSMENT, CATEGORY_CODES[verdict])],
    )
    side = f" ({SIDE_NAMES[laterality].lower()})" if laterality else ""
    return _with_comment(group, label(f"{kind.meaning}{side}", finding.score, verdict))


def measurement_report(
    sources: Mapping[str, Dataset],
    result: StudyResult,
    context: ResultContext,
    series_instance_uid: str,
    previous_reports: Sequence[Dataset] = (),
) -> hd.sr.Comprehensive3DSR:
    """The SR for one analysis version; ``previous_reports`` are the earlier versions' SRs."""
    model = result.model
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=context.device_uid,
            name=model.name,
            manufacturer_name=model.manufacturer,
            model_name=model.version,
        ),
    )
    groups = [breast_group(b, result, context, sources) for b in result.breasts] or [
        study_group(result, context, sources)
    ]
    number = 0
    for image in result.images:
        for finding in image.findings:
            number += 1
            groups.append(
                finding_group(
                    number, finding, image, sources[image.sop_instance_uid], result, context
                )
            )
    first = next(iter(sources.values()))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=PROCEDURES.get(str(first.get("Modality", "")), PROCEDURES["MG"]),
        imaging_measurements=groups,
    )
    sr = hd.sr.Comprehensive3DSR(
        content=report,
        **sr_arguments(sources.values(), model, context, series_instance_uid, 0, previous_reports),
    )
    label_like_sources(sr, model, "AI REPORT", first)
    return sr
