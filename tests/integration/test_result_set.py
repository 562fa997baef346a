"""The whole set of result objects for a study, and what they share."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import MammographyCADSRStorage

from node.config import ResultsSettings
from node.results.build import build_result_objects
from node.results.provenance import NOT_FOR_CLINICAL_USE
from tests.support.results import mammography_case, mr_case

SR = "1.2.840.10008.5.1.4.1.1.88.34"
SC = "1.2.840.10008.5.1.4.1.1.7"
GSPS = "1.2.840.10008.5.1.4.1.1.11.1"
ROOT = "1.2.826.0.1.3680043.10.1078."


def classes(objects: list[Dataset]) -> list[str]:
    return [str(o.SOPClassUID) for o in objects]


def test_mammography_set_with_presentation_states_and_utf8() -> None:
    case = mammography_case()
    for ds in case.sources:
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.PatientName = "SYNTHETIC^Zoë Ångström"
    sources = {str(ds.SOPInstanceUID): ds for ds in case.sources}
    settings = ResultsSettings(uid_root=ROOT, gsps=True)
    objects = build_result_objects(sources, case.result, settings, "BREASTNODE", 1)
    assert classes(objects) == [SR, MammographyCADSRStorage, SC, SC, SC, SC, GSPS, GSPS]
    series = {o.SeriesInstanceUID for o in objects}
    # SR, CAD SR, the overlays of each breast and view, the presentation states of each breast
    assert len(series) == 8
    for obj in objects:
        assert obj.SOPInstanceUID.startswith(ROOT)
        assert obj.StudyInstanceUID == case.result.study_instance_uid
        assert obj.SeriesDescription.startswith(NOT_FOR_CLINICAL_USE)
        assert obj.SpecificCharacterSet == "ISO_IR 192"
        assert str(obj.PatientName) == "SYNTHETIC^Zoë Ångström"
        assert obj.SeriesInstanceUID not in {ds.SeriesInstanceUID for ds in case.sources}
        devices = [e.get("DeviceUID") for e in obj.ContributingEquipmentSequence]
        assert any(devices)


def test_mr_set_has_no_cad_sr_and_reanalysis_names_predecessors(tmp_path: Path) -> None:
    case = mr_case()
    sources = {str(ds.SOPInstanceUID): ds for ds in case.sources}
    first = build_result_objects(sources, case.result, ResultsSettings(), "BREASTNODE", 1)
    assert classes(first) == [SR, SC]
    second = build_result_objects(
        sources, case.result, ResultsSettings(), "BREASTNODE", 2, previous=first
    )
    [predecessor] = second[0].PredecessorDocumentsSequence
    assert (
        predecessor.ReferencedSeriesSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID
    ) == first[0].SOPInstanceUID
    assert second[0].SeriesNumber != first[0].SeriesNumber


def test_bad_uid_roots_are_refused() -> None:
    with pytest.raises(ValueError):
        ResultsSettings(uid_root="1.2.3")  # must end in a dot
    with pytest.raises(ValueError):
        ResultsSettings(uid_root="1.02.3.")
