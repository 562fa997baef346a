"""Findings of each lesion type a model tells apart, as the reports code them: TID 1500 with
the finding types of CID 6014/6016 (and SNOMED Mass), the Mammography CAD SR with CID 6014's
concepts (a mass as 129793001), its Summary of Detections listing the types the model looks
for; both pass dciodvfy and render in dcmtk's dsr2html."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import highdicom as hd
from pydicom.dataset import Dataset

from models.serving.result import FINDING_KIND_OF_TYPE, LESION_TYPES, Finding, Point, Region
from node.results.cad_sr import cad_report
from node.results.provenance import ResultContext, device_uid_for
from node.results.sr import measurement_report
from tests.support.results import Case, mammography_case
from tests.support.validators import dsr2html, validated

# what the standard calls each kind (PS3.16 CID 6014/6016; SNOMED CT)
TID_1500_CODES = {
    "mass": ("4147007", "Mass"),
    "calcification cluster": ("129769006", "Calcification Cluster"),
    "architectural distortion": ("129792006", "Architectural distortion of breast"),
    "asymmetry": ("129789007", "Focal asymmetric breast tissue"),
}
CAD_CODES = TID_1500_CODES | {"mass": ("129793001", "Mammography breast density")}


def typed_case() -> Case:
    """The synthetic four-view case with one finding of each lesion type on the left CC,
    from a model that tells the four apart."""
    case = mammography_case()
    kinds = tuple(FINDING_KIND_OF_TYPE[name] for name in LESION_TYPES)
    images = []
    for image in case.result.images:
        if (image.laterality, image.view) == ("L", "CC"):
            findings = tuple(
                Finding(kind, 0.9 - 0.1 * n, Region.ellipse(Point(60 + 40 * n, 150), 12, 8))
                for n, kind in enumerate(kinds)
            )
            image = dataclasses.replace(image, findings=findings)
        images.append(image)
    model = dataclasses.replace(case.result.model, finding_kinds=kinds)
    result = dataclasses.replace(case.result, images=tuple(images), model=model)
    return Case("mg-typed", case.sources, result)


def concepts(node: Dataset, name: str) -> list[tuple[str, str]]:
    """(code value, meaning) of every CODE item below ``node`` whose concept name is ``name``."""
    found = []
    for item in node.get("ContentSequence", []):
        concept = item.get("ConceptNameCodeSequence")
        if concept and concept[0].CodeMeaning == name and "ConceptCodeSequence" in item:
            code = item.ConceptCodeSequence[0]
            found.append((str(code.CodeValue), str(code.CodeMeaning)))
        found.extend(concepts(item, name))
    return found


def test_each_lesion_type_is_coded_in_the_measurement_report(tmp_path: Path) -> None:
    case = typed_case()
    context = ResultContext("", device_uid_for("BREASTNODE"), 1)
    sources = {str(ds.SOPInstanceUID): ds for ds in case.sources}
    report = measurement_report(sources, case.result, context, context.new_uid(), [])
    path = tmp_path / "sr.dcm"
    back = validated(report, path, "SR with typed findings")
    groups = hd.sr.Comprehensive3DSR.from_dataset(back).content.get_image_measurement_groups()
    found = {(g.finding_type.value, g.finding_type.meaning) for g in groups if g.finding_type}
    assert set(TID_1500_CODES.values()) <= found, found
    html = dsr2html(path)
    for _, meaning in TID_1500_CODES.values():
        assert meaning in html


def test_each_lesion_type_is_a_cad_mark_of_its_concept(tmp_path: Path) -> None:
    case = typed_case()
    context = ResultContext("", device_uid_for("BREASTNODE"), 1)
    sources = {str(ds.SOPInstanceUID): ds for ds in case.sources}
    path = tmp_path / "cad.dcm"
    back = validated(cad_report(sources, case.result, context, context.new_uid()), path, "CAD")
    marks = concepts(back, "Single Image Finding")
    expected = [CAD_CODES[f.kind] for i in case.result.images for f in i.findings]
    assert sorted(marks) == sorted(expected)
    assert sorted(concepts(back, "Detection Performed")) == sorted(CAD_CODES.values())
    html = dsr2html(path)
    assert "Architectural distortion of breast" in html and "Calcification Cluster" in html

    # a model of one untyped kind looks for findings, not for masses and calcifications
    images = tuple(
        dataclasses.replace(
            image, findings=tuple(dataclasses.replace(f, kind="region") for f in image.findings)
        )
        for image in case.result.images
    )
    model = dataclasses.replace(case.result.model, finding_kinds=())
    untyped = dataclasses.replace(case.result, images=images, model=model)
    plain = cad_report(sources, untyped, context, context.new_uid())
    assert concepts(plain, "Detection Performed") == [("121071", "Finding")]
    assert {code for code, _ in concepts(plain, "Single Image Finding")} == {"121071"}
