"""The TID 1500 Measurement Report: validators, rendering, read-back, re-analysis."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import highdicom as hd
import numpy as np
import pytest
from pydicom.uid import GrayscaleSoftcopyPresentationStateStorage, SecondaryCaptureImageStorage

from node.config import ResultsSettings
from node.results.build import TID_1500_SOP_CLASS, build_result_objects
from node.results.cad_sr import MAMMOGRAPHY_CAD_SR
from node.results.common import NOT_FOR_CLINICAL_USE, ResultContext, device_uid_for
from node.results.sr import measurement_report
from tests.dicom_checks import dsr2html, validated
from tests.results_fixtures import (
    Case,
    artifact_dir,
    mammography_case,
    mr_case,
    tomosynthesis_case,
)


def build(case: Case, version: int = 1, previous: list | None = None) -> hd.sr.Comprehensive3DSR:
    context = ResultContext("", device_uid_for("BREASTNODE"), version)
    sources = {str(ds.SOPInstanceUID): ds for ds in case.sources}
    return measurement_report(sources, case.result, context, context.new_uid(), previous or [])


@pytest.mark.parametrize(
    "make", [mammography_case, tomosynthesis_case, mr_case], ids=["mg", "tomosynthesis", "mr"]
)
def test_report_validates_renders_and_reads_back(make: object, tmp_path: Path) -> None:
    case: Case = make()  # type: ignore[operator]
    sr = build(case)
    path = tmp_path / "sr.dcm"
    back = validated(sr, path, f"{case.name} SR")
    html = dsr2html(path)
    for breast in case.result.breasts:
        assert f"{round(breast.score, 4)}" in html
    pairs = [(image, f) for image in case.result.images for f in image.findings]
    findings = [f for _image, f in pairs]
    for finding in findings:
        assert f"{round(finding.score, 4)}" in html
    assert case.result.model.name in html
    if case.name == "mg":
        (artifact_dir() / "tid1500-report-mg.html").write_text(html)
        assert "Mass" in html and "Suspicious for malignancy" in html

    assert back.SeriesDescription.startswith(NOT_FOR_CLINICAL_USE)
    assert back.StudyInstanceUID == case.result.study_instance_uid
    report = hd.sr.Comprehensive3DSR.from_dataset(back)
    groups = report.content.get_planar_roi_measurement_groups()
    assert len(groups) == len(findings)
    for group, (image, finding) in zip(groups, pairs, strict=True):
        region = group.roi
        assert region is not None
        expected = [(p.column, p.row) for p in finding.region.points]
        if len(region.value) > len(expected):  # a closed polyline repeats its first point
            expected.append(expected[0])
        np.testing.assert_allclose(region.value, np.array(expected), atol=1e-3)
        [selected] = region.ContentSequence  # the SELECTED FROM image reference
        assert selected.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == (
            image.sop_instance_uid
        )
        if finding.frame and case.name == "tomo":
            assert selected.ReferencedSOPSequence[0].ReferencedFrameNumber == finding.frame
        [score] = group.get_measurements()
        assert score.value == pytest.approx(finding.score, abs=1e-4)


def test_reanalysis_references_the_previous_report(tmp_path: Path) -> None:
    case = mammography_case()
    first = build(case, version=1)
    second = build(case, version=2, previous=[first])
    [predecessor] = second.PredecessorDocumentsSequence
    referenced = predecessor.ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert referenced.ReferencedSOPInstanceUID == first.SOPInstanceUID
    assert second.SeriesNumber != first.SeriesNumber


def test_study_whose_images_name_no_breast_gets_a_study_level_group(tmp_path: Path) -> None:
    """Images of both breasts (Image Laterality B) name no single breast, so there are no
    breast results; with no finding either, TID 1500 would have no group at all (highdicom
    refuses it, so the analysis used to fail and be retried). The report carries the overall
    score in one study-level group instead, and the rest of the result set is built."""
    case = mammography_case()
    for ds in case.sources:
        ds.ImageLaterality = "B"
        del ds.Laterality
    images = tuple(
        dataclasses.replace(image, findings=(), laterality=None) for image in case.result.images
    )
    result = dataclasses.replace(case.result, images=images, breasts=(), overall_score=0.1234)
    unlateral = Case("mg-no-laterality", case.sources, result)
    path = tmp_path / "sr.dcm"
    back = validated(build(unlateral), path, "SR without laterality")
    assert "0.1234" in dsr2html(path)
    report = hd.sr.Comprehensive3DSR.from_dataset(back)
    [group] = report.content.get_image_measurement_groups()
    assert group.tracking_identifier == "Study"
    assert [m.value for m in group.get_measurements()] == [pytest.approx(0.1234)]
    [assessment] = group.get_qualitative_evaluations()
    assert assessment.value.meaning == "Normal"  # 0.1234 is under half the 0.5 threshold
    assert report.content.get_planar_roi_measurement_groups() == []

    sources = {str(ds.SOPInstanceUID): ds for ds in case.sources}
    settings = ResultsSettings(gsps=True)
    objects = build_result_objects(sources, result, settings, "BREASTNODE", 1)
    assert sorted(str(o.SOPClassUID) for o in objects) == sorted(
        [TID_1500_SOP_CLASS, MAMMOGRAPHY_CAD_SR, GrayscaleSoftcopyPresentationStateStorage]
        + [SecondaryCaptureImageStorage] * 4
    )
    for number, ds in enumerate(objects):
        validated(ds, tmp_path / f"{number}.dcm", f"object {number} without laterality")
        if ds.SOPClassUID in (
            SecondaryCaptureImageStorage,
            GrayscaleSoftcopyPresentationStateStorage,
        ):
            # General Series Laterality: type 2C for the breast, so present and empty
            assert ds.Laterality == ""
    [cad] = [n for n, ds in enumerate(objects) if ds.SOPClassUID == MAMMOGRAPHY_CAD_SR]
    assert dsr2html(tmp_path / f"{cad}.dcm").count("Right and left") == 4  # image library
