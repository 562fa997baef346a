"""The loop a hospital runs, with Orthanc as its PACS: the node is one of Orthanc's modalities
and Orthanc is the node's result destination. A sample study (``breastnode sample-study``,
SYNTHETIC) is uploaded to Orthanc over REST and pushed to the node with
``/modalities/{id}/store``; the node stores it, completes it, analyses it with the demo model
and sends the TID 1500 SR, the Mammography CAD SR and the SC overlays back. They arrive in
the same study, reference the source instances, and dcmtk's ``dsr2html`` renders both SRs
as fetched back from Orthanc."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from node.sample_study import write_sample_study
from tests.conftest import NodeFactory
from tests.e2e.test_models_pipeline import pipeline
from tests.helpers import Peer, free_port, require_tool, wait_for
from tests.orthanc import Orthanc

SR_CLASSES = {"1.2.840.10008.5.1.4.1.1.88.34", "1.2.840.10008.5.1.4.1.1.88.50"}
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


@pytest.fixture
def pacs_and_port(tmp_path: Path) -> Iterator[tuple[Orthanc, int]]:
    node_port = free_port()
    orthanc = Orthanc(tmp_path / "orthanc", {"breastnode": ("BREASTNODE", "127.0.0.1", node_port)})
    orthanc.start()
    yield orthanc, node_port
    orthanc.stop()


def instances_of(orthanc: Orthanc, study_id: str) -> list[Dataset]:
    found = orthanc.request("GET", f"/studies/{study_id}/instances")
    return [dcmread(BytesIO(orthanc.download(item["ID"]))) for item in found]


def referenced_uids(ds: Dataset) -> set[str]:
    """SOP Instance UIDs a result object names as its sources (evidence or source images)."""
    found: set[str] = set()
    for study in ds.get("CurrentRequestedProcedureEvidenceSequence", []):
        for series in study.ReferencedSeriesSequence:
            found |= {str(i.ReferencedSOPInstanceUID) for i in series.ReferencedSOPSequence}
    for item in ds.get("SourceImageSequence", []):
        found.add(str(item.ReferencedSOPInstanceUID))
    return found


@pytest.mark.orthanc
def test_orthanc_pushes_a_sample_study_and_gets_the_results_back(
    pacs_and_port: tuple[Orthanc, int],
    node_factory: NodeFactory,
    demo_weights: Path,
    tmp_path: Path,
) -> None:
    orthanc, node_port = pacs_and_port
    node_factory(
        [Peer("orthanc", "ORTHANC", "127.0.0.1", orthanc.dicom_port)],
        port=node_port,
        extra=pipeline(demo_weights),
    )
    paths = write_sample_study(tmp_path / "sample", "L", (512, 416))
    sources = {str(dcmread(p).SOPInstanceUID) for p in paths}
    [study_id] = {orthanc.upload(p)["ParentStudy"] for p in paths}
    job = orthanc.store_to("breastnode", [study_id])
    assert job.get("Failures", 0) == 0 and job.get("InstancesCount") == 4, job

    wait_for(lambda: len(instances_of(orthanc, study_id)) >= 4 + 6, timeout=180)
    results = [
        ds for ds in instances_of(orthanc, study_id) if str(ds.SOPInstanceUID) not in sources
    ]
    classes = sorted(str(ds.SOPClassUID) for ds in results)
    assert classes == sorted([*SR_CLASSES, *[SECONDARY_CAPTURE] * 4]), classes
    for ds in results:
        assert "NOT FOR CLINICAL USE" in ds.SeriesDescription
        named = referenced_uids(ds)
        assert named and named <= sources, "a result that names no source, or a stranger"
    srs = [ds for ds in results if str(ds.SOPClassUID) in SR_CLASSES]
    assert all(referenced_uids(ds) == sources for ds in srs)

    renderer = require_tool("dsr2html")
    for number, ds in enumerate(srs):
        path = tmp_path / f"sr-{number}.dcm"
        ds.save_as(path, enforce_file_format=True)
        rendered = subprocess.run([renderer, str(path)], capture_output=True, text=True)
        assert rendered.returncode == 0, rendered.stderr
        assert "<html" in rendered.stdout.lower() and "NOT FOR CLINICAL USE" in rendered.stdout
    # the results are new series of the pushed study (the source series, then the node's)
    assert orthanc.request("GET", f"/studies/{study_id}/statistics")["CountSeries"] >= 1 + 3
