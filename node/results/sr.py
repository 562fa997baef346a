"""The TID 1500 Measurement Report in a Comprehensive 3D SR (IHE AI Results), with highdicom.

Per breast: a measurement group with the malignancy score and the category as a qualitative
evaluation; a study whose images name no single breast gets one study-level group with the
overall score and its category instead, since TID 1500 needs at least one group. Per
finding: a planar ROI group whose SCOORD references the source image (and frame), with a
tracking identifier and the finding's score. The algorithm is named in the observer context
and in every group's Algorithm Identification.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from models.aggregate import category
from models.result import BreastResult, Category, Finding, ImageResult, Shape, StudyResult
from node.results.common import ResultContext, label_like_sources, sr_arguments

PROBABILITY_OF_CANCER = codes.DCM.ProbabilityOfCancer
NO_UNITS = hd.sr.CodedConcept("1", "UCUM", "no units")
ASSESSMENT = hd.sr.CodedConcept("111037", "DCM", "Overall Assessment")
BREAST_SITE = {"L": codes.SCT.LeftBreast, "R": codes.SCT.RightBreast}
CATEGORY_CODES = {
    Category.NORMAL: hd.sr.CodedConcept("17621005", "SCT", "Normal"),
    Category.BENIGN: hd.sr.CodedConcept("30807003", "SCT", "Benign"),
    Category.SUSPICIOUS: hd.sr.CodedConcept("444814009", "SCT", "Suspicious for malignancy"),
}
FINDING_TYPES = {
    "mass": hd.sr.CodedConcept("4147007", "SCT", "Mass"),
    "calcification cluster": hd.sr.CodedConcept("129759007", "SCT", "Cluster of calcifications"),
}
GENERIC_FINDING = hd.sr.CodedConcept("121071", "DCM", "Finding")
PROCEDURES = {
    "MR": hd.sr.CodedConcept("241615005", "SCT", "Magnetic resonance imaging of breast"),
    "MG": hd.sr.CodedConcept("71651007", "SCT", "Mammography"),
}
GRAPHIC_TYPES = {
    Shape.POINT: hd.sr.GraphicTypeValues.POINT,
    Shape.ELLIPSE: hd.sr.GraphicTypeValues.ELLIPSE,
    Shape.POLYGON: hd.sr.GraphicTypeValues.POLYLINE,  # closed: ends on its first point
}


def algorithm(result: StudyResult) -> hd.sr.AlgorithmIdentification:
    return hd.sr.AlgorithmIdentification(name=result.model.name, version=result.model.version)


def graphic_data(finding: Finding) -> np.ndarray:
    points = [(p.column, p.row) for p in finding.region.points]
    if finding.region.shape is Shape.POLYGON:
        points.append(points[0])  # a closed POLYLINE ends where it starts
    return np.array(points, dtype=np.float32)


def _score_measurement(score: float, result: StudyResult) -> hd.sr.Measurement:
    return hd.sr.Measurement(
        name=PROBABILITY_OF_CANCER,
        value=round(score, 4),
        unit=NO_UNITS,
        algorithm_id=algorithm(result),
    )


def breast_group(
    breast: BreastResult,
    result: StudyResult,
    context: ResultContext,
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=context.new_uid(), identifier=f"{breast.laterality} breast"
        ),
        finding_type=codes.SCT.Breast,
        finding_sites=[hd.sr.FindingSite(BREAST_SITE[breast.laterality])],
        algorithm_id=algorithm(result),
        measurements=[_score_measurement(breast.score, result)],
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(ASSESSMENT, CATEGORY_CODES[breast.category])
        ],
    )


def study_group(
    result: StudyResult, context: ResultContext
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=context.new_uid(), identifier="Study"),
        finding_type=codes.SCT.Breast,
        algorithm_id=algorithm(result),
        measurements=[_score_measurement(result.overall_score, result)],
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(
                ASSESSMENT,
                CATEGORY_CODES[category(result.overall_score, result.model.operating_threshold)],
            )
        ],
    )


def finding_group(
    number: int,
    finding: Finding,
    image: ImageResult,
    source: Dataset,
    result: StudyResult,
    context: ResultContext,
) -> hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations:
    frames = (
        [finding.frame] if finding.frame and int(source.get("NumberOfFrames", 1) or 1) > 1 else None
    )
    region = hd.sr.ImageRegion(
        graphic_type=GRAPHIC_TYPES[finding.region.shape],
        graphic_data=graphic_data(finding),
        source_image=hd.sr.SourceImageForRegion.from_source_image(
            source, referenced_frame_numbers=frames
        ),
    )
    sites = [hd.sr.FindingSite(BREAST_SITE[image.laterality])] if image.laterality else None
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=context.new_uid(), identifier=f"Finding {number}"
        ),
        referenced_region=region,
        finding_type=FINDING_TYPES.get(finding.kind, GENERIC_FINDING),
        finding_sites=sites,
        algorithm_id=algorithm(result),
        measurements=[_score_measurement(finding.score, result)],
    )


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
    groups: list[
        hd.sr.MeasurementsAndQualitativeEvaluations
        | hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations
    ] = [breast_group(b, result, context) for b in result.breasts] or [study_group(result, context)]
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
