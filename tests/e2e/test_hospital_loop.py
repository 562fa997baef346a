"""The loop a hospital runs, with Orthanc as its PACS: the node is one of Orthanc's modalities
and Orthanc is the node's result destination. Two sample studies (``breastnode
sample-study``, SYNTHETIC: four-view mammography and DCE breast MRI) are uploaded to Orthanc
over REST and pushed to the node with ``/modalities/{id}/store``; the node stores them,
completes them, analyses them with the demo models and sends the TID 1500 SR, the
Mammography CAD SR (mammography only) and the SC overlays back. They arrive in the same
studies, reference the source instances, and dcmtk's ``dsr2html`` renders the SRs as
fetched back from Orthanc."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from models.synthetic.sample_mri import write_sample_mri_study
from models.synthetic.samples import write_sample_study
from tests.conftest import NodeFactory
from tests.e2e.test_models_pipeline import pipeline
from tests.support.helpers import Peer, free_port, require_tool, wait_for
from tests.support.orthanc import Orthanc

TID1500_SR = "1.2.840.10008.5.1.4.1.1.88.34"
CAD_SR = "1.2.840.10008.5.1.4.1.1.88.50"
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


def results_of(orthanc: Orthanc, study_id: str, sources: set[str]) -> list[Dataset]:
    found = instances_of(orthanc, study_id)
    return [ds for ds in found if str(ds.SOPInstanceUID) not in sources]


def render(ds: Dataset, path: Path) -> str:
    """dcmtk's HTML rendering of an SR fetched from Orthanc."""
    ds.save_as(path, enforce_file_format=True)
    rendered = subprocess.run([require_tool("dsr2html"), str(path)], capture_output=True, text=True)
    assert rendered.returncode == 0, rendered.stderr
    return rendered.stdout


@pytest.mark.orthanc
def test_orthanc_pushes_sample_studies_and_gets_the_results_back(
    pacs_and_port: tuple[Orthanc, int],
    node_factory: NodeFactory,
    demo_weights: Path,
    demo_mri_weights: Path,
    tmp_path: Path,
) -> None:
    orthanc, node_port = pacs_and_port
    node_factory(
        [Peer("orthanc", "ORTHANC", "127.0.0.1", orthanc.dicom_port)],
        port=node_port,
        extra=pipeline(demo_weights, mri=demo_mri_weights),
    )
    mammography = write_sample_study(tmp_path / "mg", "L", (512, 416))
    mri = write_sample_mri_study(tmp_path / "mr", "R", (128, 128), slices=16)
    studies = {}
    for name, paths in (("mammography", mammography), ("mri", mri)):
        sources = {str(dcmread(p).SOPInstanceUID) for p in paths}
        [study_id] = {orthanc.upload(p)["ParentStudy"] for p in paths}
        studies[name] = (study_id, sources)
    job = orthanc.store_to("breastnode", [studies["mammography"][0], studies["mri"][0]])
    assert job.get("Failures", 0) == 0 and job.get("InstancesCount") == 4 + 48, job

    # mammography: the TID 1500 SR, the Mammography CAD SR and one overlay per view
    study_id, sources = studies["mammography"]
    wait_for(lambda: len(instances_of(orthanc, study_id)) >= 4 + 6, timeout=180)
    results = results_of(orthanc, study_id, sources)
    classes = sorted(str(ds.SOPClassUID) for ds in results)
    assert classes == sorted([TID1500_SR, CAD_SR, *[SECONDARY_CAPTURE] * 4]), classes
    for ds in results:
        assert "NOT FOR CLINICAL USE" in ds.SeriesDescription
        named = referenced_uids(ds)
        assert named and named <= sources, "a result that names no source, or a stranger"
    srs = [ds for ds in results if str(ds.SOPClassUID) in (TID1500_SR, CAD_SR)]
    assert all(referenced_uids(ds) == sources for ds in srs)
    for number, ds in enumerate(srs):
        assert "NOT FOR CLINICAL USE" in render(ds, tmp_path / f"mg-sr-{number}.dcm")
    # the results are new series of the pushed study (the source series, then the node's)
    assert orthanc.request("GET", f"/studies/{study_id}/statistics")["CountSeries"] >= 1 + 3

    # breast MRI: the TID 1500 SR and the overlay of the projection the model read; the
    # Mammography CAD SR is for mammography and tomosynthesis only
    study_id, sources = studies["mri"]
    wait_for(lambda: len(instances_of(orthanc, study_id)) >= 48 + 2, timeout=180)
    results = results_of(orthanc, study_id, sources)
    classes = sorted(str(ds.SOPClassUID) for ds in results)
    assert classes == sorted([TID1500_SR, SECONDARY_CAPTURE]), classes
    for ds in results:
        assert "NOT FOR CLINICAL USE" in ds.SeriesDescription
        named = referenced_uids(ds)
        assert named and named <= sources, "a result that names no source, or a stranger"
    [sr] = [ds for ds in results if str(ds.SOPClassUID) == TID1500_SR]
    # the analysed slice belongs to the first post-contrast series
    [slice_uid] = referenced_uids(sr)
    analysed = dcmread(next(p for p in mri if dcmread(p).SOPInstanceUID == slice_uid))
    assert analysed.SeriesDescription == "SYNTHETIC DCE T1 POST 1"
    page = render(sr, tmp_path / "mr-sr.dcm")
    assert "NOT FOR CLINICAL USE" in page and "Magnetic resonance imaging of breast" in page
    # the enhancing lesion is in the right breast: it has the finding's score
    assert "Right breast" in page and "Finding 1" in page
