"""The whole pipeline with a stand-in analysis: a study pushed in comes back to Orthanc as
results, exactly once, also when the study is resent and when the node is killed."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

from pydicom.dataset import Dataset

from models.synthetic import SyntheticPatient, mammogram, screening_study, write
from tests.conftest import NodeFactory
from tests.support.helpers import NodeProcess, Peer, free_port, storescu, wait_for
from tests.support.orthanc import Orthanc

PIPELINE = """
[pipeline]
analysis = "tests.support.standin_analysis:analyse"
quiet_seconds = 5
sweep_interval_seconds = 0.5
lease_seconds = 10
poll_seconds = 0.2
[routing]
result_destinations = ["orthanc"]
[delivery]
backoff_base_seconds = 0.5
backoff_cap_seconds = 2
timeout_s = 10
"""


def four_views(tmp_path: Path) -> tuple[Dataset, list[Path]]:
    views = screening_study()
    return views[0], [write(ds, tmp_path / "in") for ds in views]


def send(node: NodeProcess, files: list[Path]) -> None:
    result = storescu(node.port, files)
    assert result.returncode == 0, result.stderr


def orthanc_results(orthanc: Orthanc) -> list[str]:
    """SOP Instance UIDs of the stand-in results Orthanc holds (modality OT)."""
    found = orthanc.request(
        "POST",
        "/tools/find",
        json.dumps({"Level": "Instance", "Query": {"Modality": "OT"}, "Expand": True}).encode(),
    )
    return [i["MainDicomTags"]["SOPInstanceUID"] for i in found]


def deliveries(node: NodeProcess) -> list[dict[str, object]]:
    listing = node.cli("deliveries", "--json")
    assert listing.returncode == 0, listing.stderr
    return list(json.loads(listing.stdout))


def delivered(node: NodeProcess, orthanc: Orthanc, count: int) -> None:
    """Wait until the node has recorded `count` deliveries as done, then check Orthanc holds
    exactly those. Orthanc stores an object before the node hears its answer and records it,
    so waiting on Orthanc alone leaves the node's state behind for a moment."""
    wait_for(lambda: [d["state"] for d in deliveries(node)] == ["delivered"] * count, timeout=60)
    assert len(orthanc_results(orthanc)) == count


def jobs(node: NodeProcess) -> list[dict[str, object]]:
    listing = node.cli("jobs", "--json")
    assert listing.returncode == 0, listing.stderr
    return list(json.loads(listing.stdout))


def start_node(
    node_factory: NodeFactory, orthanc: Orthanc, database_url: str = "", **kwargs: object
) -> NodeProcess:
    peers = [
        Peer("storescu", "STORESCU"),
        Peer("orthanc", "ORTHANC", "127.0.0.1", orthanc.dicom_port),
    ]
    return node_factory(peers, database_url=database_url, extra=PIPELINE, **kwargs)


def test_study_in_results_out_exactly_once_even_when_resent(
    node_factory: NodeFactory, orthanc: Orthanc, tmp_path: Path, database_url: str
) -> None:
    db = "" if database_url.startswith("sqlite") else database_url
    metrics_port = free_port()
    node = start_node(node_factory, orthanc, db, metrics_port=metrics_port)
    first, files = four_views(tmp_path)
    send(node, files)
    delivered(node, orthanc, 1)
    [job] = jobs(node)
    assert (job["state"], job["version"]) == ("done", 1)
    [delivery] = deliveries(node)
    assert delivery["sop_instance_uid"] == orthanc_results(orthanc)[0]

    send(node, files)  # the same study again: duplicates, nothing new
    wait_for(lambda: "duplicate SOP Instance" in node.log.read_text(), timeout=10)
    time.sleep(9)  # well past the quiet period and several sweeps
    assert len(jobs(node)) == 1
    assert len(deliveries(node)) == 1
    assert len(orthanc_results(orthanc)) == 1

    # A late instance re-opens the study: version 2 runs over all five instances.
    late = mammogram(
        SyntheticPatient(),
        study_uid=first.StudyInstanceUID,
        laterality="L",
        view="CC",
        rows=64,
        columns=48,
        seed=9,
    )
    late.PatientID, late.PatientName = first.PatientID, first.PatientName
    send(node, [write(late, tmp_path / "late")])
    delivered(node, orthanc, 2)
    assert [(j["version"], j["state"]) for j in jobs(node)] == [(1, "done"), (2, "done")]
    assert [d["version"] for d in deliveries(node)] == [1, 2]

    # The run left an intact audit trail of receptions, analyses and sends. A send's record
    # follows its delivered state by a moment, so wait for the second one.
    def sends_audited() -> str:
        text = node.cli("audit", "export").stdout
        return text if text.count('EventActionCode="R"') >= 2 else ""

    exported = wait_for(sends_audited, timeout=10)
    assert exported.count('EventActionCode="R"') == 2  # two results sent, no more
    verify = node.cli("audit", "verify")
    assert verify.returncode == 0, verify.stdout
    assert 'csd-code="110100"' in exported  # application start
    assert exported.count('EventActionCode="C"') >= 3  # received x2 associations, analysed
    assert 'csd-code="110103"' in exported
    assert first.PatientID in exported  # audit records may, and do, name the patient

    metrics = fetch(metrics_port, "/metrics")
    samples = (
        "breastnode_instances_received_total 5.0",
        "breastnode_studies_completed_total 2.0",
        'breastnode_jobs{state="done"} 2.0',
        'breastnode_deliveries{state="delivered"} 2.0',
        "breastnode_receive_to_complete_seconds_count 1.0",
        "breastnode_complete_to_analysed_seconds_count 2.0",
        "breastnode_analysed_to_delivered_seconds_count 2.0",
    )
    assert [sample for sample in samples if sample not in metrics] == []
    health = json.loads(fetch(metrics_port, "/healthz"))
    assert health == {"ok": True, "checks": {"scp": True, "worker": True, "database": True}}


def fetch(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return str(response.read().decode())


def test_sigkill_during_analysis_then_restart(
    node_factory: NodeFactory, orthanc: Orthanc, tmp_path: Path
) -> None:
    # Long enough that the kill always lands while the job runs, however slow the polls; the
    # restarted node runs without it.
    slow = {"BREASTNODE_TEST_ANALYSIS_SLEEP": "60"}
    node = start_node(node_factory, orthanc, env=slow)
    _first, files = four_views(tmp_path)
    send(node, files)
    wait_for(lambda: any(j["state"] == "running" for j in jobs(node)), timeout=30)
    node.kill()
    assert not node.children_alive()
    restarted = start_node(node_factory, orthanc, root=node.root, port=node.port)
    delivered(restarted, orthanc, 1)
    [job] = jobs(restarted)
    assert job["state"] == "done"
    assert int(str(job["attempts"])) == 2
    time.sleep(3)
    assert len(orthanc_results(orthanc)) == 1


def test_orthanc_down_then_back(
    node_factory: NodeFactory, orthanc: Orthanc, tmp_path: Path
) -> None:
    orthanc.stop()
    node = start_node(node_factory, orthanc)
    _first, files = four_views(tmp_path)
    send(node, files)
    # Attempts count when a try is claimed, so wait for the row back in back-off after its
    # second failed try, read in one listing (a try in flight shows "sending").
    row = wait_for(
        lambda: next(
            (
                d
                for d in deliveries(node)
                if d["state"] == "pending" and int(str(d["attempts"])) >= 2
            ),
            None,
        ),
        timeout=60,
    )
    assert row["last_error"] == "peer unreachable, timed out or aborted"
    assert len(deliveries(node)) == 1
    orthanc.start()
    delivered(node, orthanc, 1)


def test_orthanc_refusing_then_allowing(node_factory: NodeFactory, tmp_path: Path) -> None:
    """Orthanc refuses a store from an unknown AE by aborting the association: transient for
    the node, which keeps retrying with back-off until hospital IT adds it as a modality."""
    strict = Orthanc(tmp_path / "strict", always_allow_store=False).start()
    try:
        node = start_node(node_factory, strict)
        _first, files = four_views(tmp_path)
        send(node, files)
        wait_for(lambda: any(int(str(d["attempts"])) >= 3 for d in deliveries(node)), timeout=60)
        [row] = deliveries(node)
        assert row["state"] in {"pending", "sending"}
        assert orthanc_results(strict) == []
    finally:
        strict.stop()
    strict.modalities = {"breastnode": ("BREASTNODE", "127.0.0.1", node.port)}
    strict.start()
    try:
        delivered(node, strict, 1)
        time.sleep(3)
        assert len(orthanc_results(strict)) == 1
    finally:
        strict.stop()
