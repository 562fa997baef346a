"""The TID 1500 Measurement Report: validators, rendering, read-back, re-analysis."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import highdicom as hd
import numpy as np
import pytest
from pydicom.sr.codedict import codes
from pydicom.uid import (
    Comprehensive3DSRStorage,
    GrayscaleSoftcopyPresentationStateStorage,
    MammographyCADSRStorage,
    SecondaryCaptureImageStorage,
)

from models.serving.aggregate import category
from models.serving.result import Finding, Point, Region, Shape, StudyResult
from node.config import ResultsSettings
from node.results.build import build_result_objects
from node.results.provenance import NOT_FOR_CLINICAL_USE, ResultContext, device_uid_for
from node.results.sc import overlay_text
from node.results.sr import (
    BREAST_SITE,
    CATEGORY_CODES,
    CORNERSTONE,
    SIDE_NAMES,
    box,
    extent,
    label,
    measurement_report,
    whole_image,
)
from tests.support.results import (
    Case,
    artifact_dir,
    mammography_case,
    mr_case,
    tomosynthesis_case,
)
from tests.support.validators import dsr2html, validated


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
    every = report.content.get_image_measurement_groups()
    assert report.content.get_planar_roi_measurement_groups() == []
    # every score is INFERRED FROM a region on a source image (OHIF draws nothing else, and
    # fails on a group without one); the identifier names OHIF's tool, then the group
    breasts = [g for g in every if "Finding " not in g.tracking_identifier]
    assert [g.tracking_identifier for g in breasts] == [
        f"{CORNERSTONE}:RectangleROI:{SIDE_NAMES[b.laterality]}" for b in case.result.breasts
    ]
    for group, breast in zip(breasts, case.result.breasts, strict=True):
        [score] = group.get_measurements()
        assert score.value == pytest.approx(breast.score, abs=1e-4)
        [verdict] = group.get_qualitative_evaluations()
        assert verdict.value.meaning == CATEGORY_CODES[breast.category].meaning
        assert comment_of(group) == label(
            SIDE_NAMES[breast.laterality], breast.score, breast.category
        )
        source = next(ds for ds in case.sources if ds.SOPInstanceUID == referenced(group))
        assert source.SOPInstanceUID in {
            i.sop_instance_uid
            for i in case.result.images
            if i.laterality in (breast.laterality, None)
        }
        np.testing.assert_allclose(region_of(group).value, whole_image(source))
    groups = [g for g in every if "Finding " in g.tracking_identifier]
    assert len(groups) == len(findings)
    for group, (image, finding) in zip(groups, pairs, strict=True):
        region = region_of(group)
        if finding.region.shape is Shape.POINT:
            expected = np.array([[finding.region.center.column, finding.region.center.row]])
        else:  # the bounding box: every outline point inside, touching each side
            left, top, right, bottom = extent(finding)
            expected = box(left, top, right, bottom)
            outline = np.array([(p.column, p.row) for p in finding.region.points])
            assert (outline[:, 0] >= left - 1e-3).all() and (outline[:, 0] <= right + 1e-3).all()
            assert (outline[:, 1] >= top - 1e-3).all() and (outline[:, 1] <= bottom + 1e-3).all()
        np.testing.assert_allclose(region.value, expected, atol=1e-3)
        [selected] = region.ContentSequence  # the SELECTED FROM image reference
        assert selected.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == (
            image.sop_instance_uid
        )
        if finding.frame and case.name == "tomo":
            assert selected.ReferencedSOPSequence[0].ReferencedFrameNumber == finding.frame
        [score] = group.get_measurements()
        assert score.value == pytest.approx(finding.score, abs=1e-4)
        side = finding.laterality or image.laterality
        if side:
            [site] = group.finding_sites
            assert site.value == BREAST_SITE[side]
        assert comment_of(group).endswith(
            label("", finding.score, category(finding.score, case.result.model.operating_threshold))
        )


def region_of(group: hd.sr.MeasurementsAndQualitativeEvaluations) -> hd.sr.ScoordContentItem:
    """The region the group's score is INFERRED FROM."""
    [score] = group.get_measurements()
    [region] = [i for i in score[0].ContentSequence if i.ValueType == "SCOORD"]
    assert region.RelationshipType == "INFERRED FROM"
    return hd.sr.ScoordContentItem.from_dataset(region)


def comment_of(group: hd.sr.MeasurementsAndQualitativeEvaluations) -> str:
    [comment] = [item for item in group[0].ContentSequence if item.name == codes.DCM.Comment]
    return str(comment.value)


def referenced(group: hd.sr.MeasurementsAndQualitativeEvaluations) -> str:
    selected = region_of(group).ContentSequence[0]
    return str(selected.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)


def test_an_oblique_ellipse_is_reported_as_its_bounding_box() -> None:
    """The box of an ellipse at 30 degrees is wider than its axis end points' box: the
    extent of the whole curve, not of the four points DICOM stores."""
    finding = Finding("mass", 0.9, Region.ellipse(Point(100, 100), 20, 10, 30))
    left, top, right, bottom = extent(finding)
    half_width = np.hypot(20 * np.cos(np.pi / 6), 10 * np.sin(np.pi / 6))
    half_height = np.hypot(20 * np.sin(np.pi / 6), 10 * np.cos(np.pi / 6))
    assert (left, right) == pytest.approx((100 - half_width, 100 + half_width))
    assert (top, bottom) == pytest.approx((100 - half_height, 100 + half_height))
    axis_points = np.array([(p.column, p.row) for p in finding.region.points])
    assert right - left > np.ptp(axis_points[:, 0]) + 1


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
    assert group.tracking_identifier == f"{CORNERSTONE}:RectangleROI:Study"
    assert group.finding_sites == []  # the images name no single breast
    assert [m.value for m in group.get_measurements()] == [pytest.approx(0.1234)]
    [assessment] = group.get_qualitative_evaluations()
    assert assessment.value.meaning == "Normal"  # 0.1234 is under half the 0.5 threshold
    assert comment_of(group) == "Study: 0.12, normal"
    assert referenced(group) == str(case.sources[0].SOPInstanceUID)

    sources = {str(ds.SOPInstanceUID): ds for ds in case.sources}
    settings = ResultsSettings(gsps=True)
    objects = build_result_objects(sources, result, settings, "BREASTNODE", 1)
    assert sorted(str(o.SOPClassUID) for o in objects) == sorted(
        [
            Comprehensive3DSRStorage,
            MammographyCADSRStorage,
            GrayscaleSoftcopyPresentationStateStorage,
        ]
        + [SecondaryCaptureImageStorage] * 4
    )
    for number, ds in enumerate(objects):
        validated(ds, tmp_path / f"{number}.dcm", f"object {number} without laterality")
        if ds.SOPClassUID == SecondaryCaptureImageStorage:
            # the overlay states its source's Image Laterality (B), so no series Laterality
            # (dciodvfy refuses both together)
            assert ds.ImageLaterality == "B" and "Laterality" not in ds
        if ds.SOPClassUID == GrayscaleSoftcopyPresentationStateStorage:
            # General Series Laterality: type 2C for the breast, so present and empty
            assert ds.Laterality == ""
    [cad] = [n for n, ds in enumerate(objects) if ds.SOPClassUID == MammographyCADSRStorage]
    assert dsr2html(tmp_path / f"{cad}.dcm").count("Right and left") == 4  # image library


def test_an_mri_finding_names_its_breast_though_its_image_shows_both(tmp_path: Path) -> None:
    """The MRI projection shows both breasts (no image laterality); the finding says which
    breast it is in, and its group names that breast as its site and in its label."""
    case = mr_case()
    [image] = case.result.images
    finding = dataclasses.replace(image.findings[0], laterality="L")
    both = dataclasses.replace(image, laterality=None, findings=(finding,))
    result = dataclasses.replace(case.result, images=(both,))
    back = validated(build(Case("mr-both", case.sources, result)), tmp_path / "sr.dcm", "MR SR")
    groups = hd.sr.Comprehensive3DSR.from_dataset(back).content.get_image_measurement_groups()
    [group] = [g for g in groups if "Finding " in g.tracking_identifier]
    [site] = group.finding_sites
    assert site.value == BREAST_SITE["L"]
    assert "(left breast)" in comment_of(group)


def test_breast_composition_is_reported_with_dicoms_codes(tmp_path: Path) -> None:
    """A breast's BI-RADS composition (a density model's) is a qualitative evaluation coded
    from CID 6000 in its group, named in the group's label, and on its overlays."""
    case = mammography_case()
    breasts = tuple(
        dataclasses.replace(b, composition="b" if b.laterality == "L" else "d")
        for b in case.result.breasts
    )
    result = dataclasses.replace(case.result, breasts=breasts)
    dense = Case("mg-density", case.sources, result)
    path = tmp_path / "sr.dcm"
    back = validated(build(dense), path, "SR with composition")
    html = dsr2html(path)
    assert "Scattered fibroglandular densities" in html and "Extremely dense" in html
    groups = hd.sr.Comprehensive3DSR.from_dataset(back).content.get_image_measurement_groups()
    by_side = {g.tracking_identifier.rsplit(":", 1)[1]: g for g in groups}
    for side, code in (("Left breast", "129717001"), ("Right breast", "129719003")):
        group = by_side[side]
        [composition] = [
            q for q in group.get_qualitative_evaluations() if q.name == codes.SCT.BreastComposition
        ]
        assert (composition.value.value, composition.value.scheme_designator) == (code, "SCT")
        assert "breast composition" in comment_of(group)
    [image] = [i for i in case.result.images if (i.laterality, i.view) == ("L", "CC")]
    assert "density b" in overlay_text(image, 0.86, case.result.model, "b")
    # the overlays' burned-in labels carry it: the same overlays without it differ
    sources = {str(ds.SOPInstanceUID): ds for ds in case.sources}

    def overlays(of: StudyResult) -> list[np.ndarray]:
        built = build_result_objects(sources, of, ResultsSettings(), "BN", 1)
        return [o.pixel_array for o in built if o.SOPClassUID == SecondaryCaptureImageStorage]

    with_density, without = overlays(result), overlays(case.result)
    assert len(with_density) == 4
    assert all((a != b).any() for a, b in zip(with_density, without, strict=True))
