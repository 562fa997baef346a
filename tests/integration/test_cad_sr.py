"""The Mammography CAD SR (TID 4000): validators, rendering, marks and rendering intent."""

from __future__ import annotations

import re
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import highdicom as hd
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ComprehensiveSRStorage, MammographyCADSRStorage

from models.serving.result import Shape
from node.results.cad_sr import cad_report
from node.results.provenance import NOT_FOR_CLINICAL_USE, ResultContext, device_uid_for
from tests.support.results import (
    Case,
    artifact_dir,
    mammography_case,
    tomosynthesis_case,
    with_view_modifier,
)
from tests.support.validators import dsr2html, validated


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

    assert back.SOPClassUID == MammographyCADSRStorage
    assert back.file_meta.MediaStorageSOPClassUID == MammographyCADSRStorage
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


@dataclass(frozen=True)
class Mark:
    """A CAD mark as a workstation reads it from the SR alone."""

    image: str
    frame: int | None
    laterality: str
    view: str
    center: tuple[float, float]
    outline: tuple[tuple[float, float], ...]
    certainty: float
    required: bool


def code_of(item: Dataset) -> str:
    return str(item.ConceptCodeSequence[0].CodeMeaning)


def named(item: Dataset) -> str:
    return str(item.ConceptNameCodeSequence[0].CodeMeaning)


def read_marks(data: bytes) -> list[Mark]:
    """Every Single Image Finding of a Mammography CAD SR, with its image's laterality and
    view from the Image Library, from the written bytes and nothing else."""
    ds = dcmread(BytesIO(data))
    assert ds.SOPClassUID == MammographyCADSRStorage
    [library] = [i for i in ds.ContentSequence if named(i) == "Image Library"]
    entries = {}
    for entry in library.ContentSequence:
        assert entry.ValueType == "IMAGE" and entry.RelationshipType == "CONTAINS"
        context = {named(c): c for c in entry.ContentSequence}
        assert context["Image Laterality"].RelationshipType == "HAS ACQ CONTEXT"
        uid = entry.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
        entries[uid] = (code_of(context["Image Laterality"]), code_of(context["Image View"]))
    marks = []
    for single in items(ds, "Single Image Finding"):
        properties = {named(p): p for p in single.ContentSequence}
        center, outline = properties["Center"], properties.get("Outline")
        certainty = properties["Certainty of Finding"]
        [selected] = center.ContentSequence
        reference = selected.ReferencedSOPSequence[0]
        laterality, view = entries[reference.ReferencedSOPInstanceUID]
        points = [] if outline is None else list(outline.GraphicData)
        marks.append(
            Mark(
                image=reference.ReferencedSOPInstanceUID,
                frame=reference.get("ReferencedFrameNumber"),
                laterality=laterality,
                view=view,
                center=(float(center.GraphicData[0]), float(center.GraphicData[1])),
                outline=tuple(
                    (float(points[n]), float(points[n + 1])) for n in range(0, len(points), 2)
                ),
                certainty=float(certainty.MeasuredValueSequence[0].NumericValue),
                required="Required" in code_of(properties["Rendering Intent"]),
            )
        )
    return marks


@pytest.mark.parametrize(
    "make", [mammography_case, tomosynthesis_case], ids=["mg", "tomosynthesis"]
)
def test_a_reader_rebuilds_every_mark_from_the_sr_alone(make: object, tmp_path: Path) -> None:
    """What the model found, read back from the SR's bytes by walking its content tree:
    each mark's image (and frame), centre, outline, certainty, rendering intent and the
    laterality and view the Image Library gives its image (TID 4020)."""
    case: Case = make()  # type: ignore[operator]
    context = ResultContext("", device_uid_for("BREASTNODE"), 1)
    sources = {str(ds.SOPInstanceUID): ds for ds in case.sources}
    sr = cad_report(sources, case.result, context, context.new_uid())
    path = tmp_path / "cad.dcm"
    validated(sr, path, f"{case.name} CAD SR")
    marks = read_marks(path.read_bytes())
    sides = {"L": "Left", "R": "Right"}
    views = {"CC": "cranio-caudal", "MLO": "medio-lateral oblique"}
    expected = [(image, f) for image in case.result.images for f in image.findings]
    assert len(marks) == len(expected)
    threshold = case.result.model.operating_threshold
    for mark, (image, finding) in zip(marks, expected, strict=True):
        source = sources[image.sop_instance_uid]
        assert mark.image == image.sop_instance_uid
        multi_frame = int(source.get("NumberOfFrames", 1)) > 1
        assert mark.frame == (finding.frame if multi_frame else None)
        assert mark.laterality == sides[str(image.laterality)]
        assert mark.view == views[str(image.view)]
        center = finding.region.center
        assert mark.center == pytest.approx((center.column, center.row), abs=1e-3)
        points = [(p.column, p.row) for p in finding.region.points]
        outline = list(mark.outline)
        if finding.region.shape is Shape.POINT:
            assert outline == []
        else:
            if len(outline) > len(points):  # a closed polyline repeats its first point
                assert outline[-1] == outline[0]
                outline = outline[:-1]
            assert outline == [pytest.approx(p, abs=1e-3) for p in points]
        assert mark.certainty == pytest.approx(finding.score * 100, abs=0.01)
        assert mark.required == (finding.score >= threshold)


def test_the_image_library_states_what_workstations_place_marks_by(tmp_path: Path) -> None:
    """TID 4020 rows whose attribute the image has: laterality, view with its modifier,
    patient orientation, study and content date and time, pixel spacing in mm."""
    case = with_view_modifier(mammography_case())
    context = ResultContext("", device_uid_for("BREASTNODE"), 1)
    sources = {str(ds.SOPInstanceUID): ds for ds in case.sources}
    sr = cad_report(sources, case.result, context, context.new_uid())
    back = validated(sr, tmp_path / "cad.dcm", "CAD SR library")
    assert named(back.ContentSequence[0]) == "Language of Content Item and Descendants"
    [library] = items(back, "Image Library")
    for entry in library.ContentSequence:
        source = sources[entry.ReferencedSOPSequence[0].ReferencedSOPInstanceUID]
        context_items = {named(c): c for c in entry.ContentSequence}
        assert context_items["Patient Orientation Row"].TextValue == source.PatientOrientation[0]
        assert (
            context_items["Patient Orientation Column"].TextValue == (source.PatientOrientation[1])
        )
        assert context_items["Study Date"].Date == source.StudyDate
        assert context_items["Study Time"].Time == source.StudyTime
        assert context_items["Content Date"].Date == source.ContentDate
        assert context_items["Content Time"].Time == source.ContentTime
        row, column = source.ImagerPixelSpacing
        for name, value in (("Horizontal Pixel Spacing", column), ("Vertical Pixel Spacing", row)):
            measured = context_items[name].MeasuredValueSequence[0]
            assert float(measured.NumericValue) == pytest.approx(float(value))
            assert measured.MeasurementUnitsCodeSequence[0].CodeValue == "mm"
        view = context_items["Image View"]
        assert view.ConceptCodeSequence[0].CodeValue == source.ViewCodeSequence[0].CodeValue
        modifiers = source.ViewCodeSequence[0].get("ViewModifierCodeSequence", [])
        stated = [m.ConceptCodeSequence[0].CodeValue for m in view.get("ContentSequence", [])]
        assert stated == [m.CodeValue for m in modifiers]
    [detections] = items(back, "Summary of Detections")
    [successful] = detections.ContentSequence
    assert named(successful) == "Successful Detections"
    assert {code_of(d) for d in successful.ContentSequence} == {
        "Mammography breast density",  # CID 6014's mass
        "Calcification Cluster",
    }


def test_highdicom_reads_the_content_tree(tmp_path: Path) -> None:
    """highdicom's ``srread`` has no class for the Mammography CAD SR SOP class (it names the
    class unsupported); its Comprehensive SR reader, whose IOD modules the Mammography CAD SR
    shares, parses our content tree whole when given the same bytes under that class."""
    case = mammography_case()
    context = ResultContext("", device_uid_for("BREASTNODE"), 1)
    sources = {str(ds.SOPInstanceUID): ds for ds in case.sources}
    path = tmp_path / "cad.dcm"
    cad_report(sources, case.result, context, context.new_uid()).save_as(
        path, enforce_file_format=True
    )
    with pytest.raises(RuntimeError, match="not supported"):
        hd.sr.srread(path)
    ds = dcmread(path)
    ds.SOPClassUID = ComprehensiveSRStorage
    report = hd.sr.ComprehensiveSR.from_dataset(ds)
    [root] = report.content
    assert root.name.meaning == "Mammography CAD Report"
    assert len(root.ContentSequence) == len(dcmread(path).ContentSequence)
    [library] = [i for i in root.ContentSequence if i.name.meaning == "Image Library"]
    assert all(isinstance(e, hd.sr.ImageContentItem) for e in library.ContentSequence)
