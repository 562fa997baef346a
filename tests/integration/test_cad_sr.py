"""The Mammography CAD SR (TID 4000): validators, rendering, marks and rendering intent."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from node.results.cad_sr import MAMMOGRAPHY_CAD_SR, cad_report
from node.results.common import NOT_FOR_CLINICAL_USE, ResultContext, device_uid_for
from tests.dicom_checks import dsr2html, validated
from tests.results_fixtures import Case, artifact_dir, mammography_case, tomosynthesis_case


def items(node: Dataset, meaning: str) -> list[Dataset]:
    """Every content item below ``node`` whose concept name has this meaning."""
    found = []
    for item in node.get("ContentSequence", []):
        name = item.get("ConceptNameCodeSequence")
        if name and name[0].CodeMeaning == meaning:
            found.append(item)
        found.extend(items(item, meaning))
    return found


@pytest.mark.parametrize(
    "make", [mammography_case, tomosynthesis_case], ids=["mg", "tomosynthesis"]
)
def test_cad_report(make: object, tmp_path: Path) -> None:
    case: Case = make()  # type: ignore[operator]
    context = ResultContext("", device_uid_for("BREASTNODE"), 1)
    sources = {str(ds.SOPInstanceUID): ds for ds in case.sources}
    sr = cad_report(sources, case.result, context, context.new_uid())
    path = tmp_path / "cad.dcm"
    back = validated(sr, path, f"{case.name} CAD SR")
    html = dsr2html(path)
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    assert "Mammography CAD Report" in text and "Image Library" in text
    for image in case.result.images:
        for finding in image.findings:
            assert f"Certainty of Finding = {round(finding.score * 100, 2)} %" in text
    assert "Rendering Intent = Presentation Required" in text
    if case.name == "mg":
        (artifact_dir() / "mammography-cad-sr-mg.html").write_text(html)

    assert back.SOPClassUID == MAMMOGRAPHY_CAD_SR
    assert back.file_meta.MediaStorageSOPClassUID == MAMMOGRAPHY_CAD_SR
    assert back.ContentTemplateSequence[0].TemplateIdentifier == "4000"
    assert back.SeriesDescription.startswith(NOT_FOR_CLINICAL_USE)

    [library] = items(back, "Image Library")
    assert len(library.ContentSequence) == len(case.result.images)
    findings = [f for image in case.result.images for f in image.findings]
    singles = items(back, "Single Image Finding")
    assert len(singles) == len(findings)
    threshold = case.result.model.operating_threshold
    for single, finding in zip(singles, findings, strict=True):
        [certainty] = items(single, "Certainty of Finding")
        value = certainty.MeasuredValueSequence[0].NumericValue
        assert float(value) == pytest.approx(finding.score * 100, abs=0.01)
        [intent] = items(single, "Rendering Intent")
        expected = "Required" if finding.score >= threshold else "Optional"
        assert expected in intent.ConceptCodeSequence[0].CodeMeaning
        [center] = items(single, "Center")
        assert list(center.GraphicData) == pytest.approx(
            [finding.region.center.column, finding.region.center.row], abs=1e-3
        )
        [image_ref] = center.ContentSequence
        assert image_ref.RelationshipType == "SELECTED FROM"
        if finding.frame:
            assert image_ref.ReferencedSOPSequence[0].ReferencedFrameNumber == finding.frame
