"""Orthanc accepts every result object by C-STORE; its study then holds the source series and
the result series."""

from __future__ import annotations

from pathlib import Path

from models.synthetic import write
from node.config import PeerSettings, ResultsSettings, Settings
from node.results.build import build_result_objects
from tests.support.helpers import send_files
from tests.support.orthanc import Orthanc
from tests.support.results import mammography_case


def test_orthanc_stores_source_and_result_series(tmp_path: Path) -> None:
    case = mammography_case()
    orthanc = Orthanc(tmp_path / "orthanc").start()
    try:
        for ds in case.sources:
            orthanc.upload(write(ds, tmp_path / "sources"))
        sources = {str(ds.SOPInstanceUID): ds for ds in case.sources}
        objects = build_result_objects(
            sources, case.result, ResultsSettings(gsps=True), "BREASTNODE", 1
        )
        peer = PeerSettings(
            name="orthanc", ae_title="ORTHANC", host="127.0.0.1", port=orthanc.dicom_port
        )
        for n, ds in enumerate(objects):
            path = tmp_path / "results" / f"{n}.dcm"
            path.parent.mkdir(exist_ok=True)
            ds.save_as(path, enforce_file_format=True)
            [outcome] = send_files(Settings().node, peer, [path], 30)
            assert outcome.delivered, (ds.SOPClassUID, outcome.detail)

        studies = orthanc.request("GET", "/studies")
        assert len(studies) == 1
        series = orthanc.request("GET", f"/studies/{studies[0]}/series")
        by_modality: dict[str, int] = {}
        for item in series:
            modality = item["MainDicomTags"].get("Modality", "")
            by_modality[modality] = by_modality.get(modality, 0) + len(item["Instances"])
        # the source series (one per view here), two SR series, the overlays (one series per
        # breast and view) and the presentation states (one series per breast)
        source_series = {str(ds.SeriesInstanceUID) for ds in case.sources}
        assert len(series) == len(source_series) + 8
        assert by_modality["MG"] == 8  # the sources and their overlays, which hang beside them
        assert by_modality["SR"] == 2
        assert "OT" not in by_modality
        assert by_modality["PR"] == 2
    finally:
        orthanc.stop()
