"""Fixed analysis results for the result-object tests: a 4-view MG study, a tomosynthesis
object and an MR series, each with a heatmap blob and a finding at a known place."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from models.serving import result as model_result
from models.synthetic import (
    BREAST_TOMOSYNTHESIS,
    SyntheticPatient,
    mammogram,
    mr_slice,
    screening_study,
)
from tests.support.helpers import REPO

ARTIFACTS = REPO / "test-artifacts"
DEMO_MODEL = model_result.ModelInfo("BreastNode demo", "0.1.0", False, 0.5)


def blob(rows: int, columns: int, center: model_result.Point, radius: float) -> np.ndarray:
    y, x = np.mgrid[0:rows, 0:columns]
    heat = np.exp(-(((y - center.row) / radius) ** 2 + ((x - center.column) / radius) ** 2))
    blurred: np.ndarray = heat.astype(np.float32)
    return blurred


@dataclass
class Case:
    name: str
    sources: list[Dataset]
    result: model_result.StudyResult


def with_view_modifier(case: Case) -> Case:
    """The case with its L MLO view modified (axillary tail, CID 4015), so the copies of the
    View Code Sequence are tested whole."""
    modifier = Dataset()
    modifier.CodeValue, modifier.CodingSchemeDesignator = "399011000", "SCT"
    modifier.CodeMeaning = "axillary tail"
    for ds in case.sources:
        if (ds.ImageLaterality, ds.ViewPosition) == ("L", "MLO"):
            ds.ViewCodeSequence[0].ViewModifierCodeSequence = Sequence([modifier])
    return case


def mammography_case() -> Case:
    views = screening_study(rows=320, columns=240)
    for ds in views:
        ds.PatientOrientation = ["P", "L"] if ds.ImageLaterality == "R" else ["A", "R"]
        ds.StudyDescription = "SYNTHETIC SCREENING MAMMOGRAPHY"
        ds.ImagerPixelSpacing = [0.085, 0.085]
    study_uid = views[0].StudyInstanceUID
    lesion = model_result.Point(150, 170)
    images = []
    for ds in views:
        findings: tuple[model_result.Finding, ...] = ()
        heat = np.zeros((320, 240), np.float32)
        if ds.ImageLaterality == "L":
            heat = blob(320, 240, lesion, 20)
            findings = (
                model_result.Finding("mass", 0.86, model_result.Region.ellipse(lesion, 24, 16, 30)),
                model_result.Finding(
                    "calcification cluster", 0.31, model_result.Region.point(60, 90)
                ),
            )
        images.append(
            model_result.ImageResult(
                ds.SOPInstanceUID, heat, findings, ds.ImageLaterality, ds.ViewPosition
            )
        )
    result = model_result.StudyResult(
        str(study_uid),
        tuple(images),
        (
            model_result.BreastResult("L", 0.86, model_result.Category.SUSPICIOUS, birads=4),
            model_result.BreastResult("R", 0.07, model_result.Category.NORMAL, birads=1),
        ),
        0.86,
        DEMO_MODEL,
    )
    return Case("mg", views, result)


def one_suspicious_image(
    study_uid: str, image: model_result.ImageResult, score: float
) -> model_result.StudyResult:
    """The result of a study with one analysed image (tomosynthesis, an MR projection): the
    image's breast and the study are suspicious with the image's score."""
    assert image.laterality is not None
    breast = model_result.BreastResult(image.laterality, score, model_result.Category.SUSPICIOUS)
    return model_result.StudyResult(study_uid, (image,), (breast,), score, DEMO_MODEL)


def shared_groups() -> Dataset:
    """The functional groups every frame of the synthetic tomosynthesis object shares."""
    transformation = Dataset()
    transformation.RescaleSlope, transformation.RescaleIntercept = 1, 0
    transformation.RescaleType = "US"
    measures = Dataset()
    measures.PixelSpacing, measures.SliceThickness = [0.1, 0.1], 1.0
    groups = Dataset()
    groups.PixelValueTransformationSequence = Sequence([transformation])
    groups.PixelMeasuresSequence = Sequence([measures])
    return groups


def tomosynthesis_case() -> Case:
    ds = mammogram(
        SyntheticPatient(),
        laterality="L",
        view="CC",
        rows=160,
        columns=120,
        sop_class=BREAST_TOMOSYNTHESIS,
    )
    frames = np.stack([ds.pixel_array + 10 * k for k in range(5)]).astype(np.uint16)
    ds.NumberOfFrames = 5
    ds.PixelData = frames.tobytes()
    ds.SharedFunctionalGroupsSequence = Sequence([shared_groups()])
    ds.PerFrameFunctionalGroupsSequence = Sequence([Dataset() for _ in range(5)])
    ds.PatientOrientation = ["A", "R"]
    lesion = model_result.Point(70, 80)
    image = model_result.ImageResult(
        ds.SOPInstanceUID,
        blob(160, 120, lesion, 12),
        (model_result.Finding("mass", 0.72, model_result.Region.ellipse(lesion, 14, 10), frame=3),),
        "L",
        "CC",
        frame=3,
    )
    return Case("tomo", [ds], one_suspicious_image(str(ds.StudyInstanceUID), image, 0.72))


def mr_case() -> Case:
    patient = SyntheticPatient()
    first = mr_slice(patient, rows=160, columns=160)
    slices = [first] + [
        mr_slice(
            patient,
            study_uid=first.StudyInstanceUID,
            series_uid=first.SeriesInstanceUID,
            rows=160,
            columns=160,
            instance_number=n,
            seed=n,
        )
        for n in range(2, 5)
    ]
    projection = np.max(np.stack([s.pixel_array for s in slices]), axis=0).astype(np.float32)
    lesion = model_result.Point(100, 110)
    corners = [
        model_result.Point(row, column)
        for row, column in ((90, 100), (110, 100), (110, 120), (90, 120))
    ]
    image = model_result.ImageResult(
        first.SOPInstanceUID,
        blob(160, 160, lesion, 10),
        (model_result.Finding("enhancing lesion", 0.64, model_result.Region.polygon(corners)),),
        "R",
        None,
        display_image=projection,
    )
    return Case("mr", slices, one_suspicious_image(str(first.StudyInstanceUID), image, 0.64))


def artifact_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
