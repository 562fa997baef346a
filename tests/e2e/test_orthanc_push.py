"""Orthanc, as a hospital PACS would, pushes a study to `breastnode serve`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from models.synthetic import screening_study, write
from tests.conftest import NodeFactory
from tests.support.helpers import Peer, dataset_bytes, free_port
from tests.support.orthanc import Orthanc


@pytest.fixture
def orthanc_and_node(
    tmp_path: Path, node_factory: NodeFactory
) -> Iterator[tuple[Orthanc, int, NodeFactory]]:
    node_port = free_port()
    orthanc = Orthanc(tmp_path / "orthanc", {"breastnode": ("BREASTNODE", "127.0.0.1", node_port)})
    orthanc.start()
    yield orthanc, node_port, node_factory
    orthanc.stop()


def test_orthanc_pushes_a_four_view_study(
    orthanc_and_node: tuple[Orthanc, int, NodeFactory], tmp_path: Path
) -> None:
    orthanc, node_port, node_factory = orthanc_and_node
    node = node_factory(
        [Peer("orthanc", "ORTHANC", "127.0.0.1", orthanc.dicom_port)], port=node_port
    )
    views = screening_study(rows=512, columns=384)
    first = views[0]
    files = {str(ds.SOPInstanceUID): write(ds, tmp_path / "in") for ds in views}
    study_ids = {orthanc.upload(path)["ParentStudy"] for path in files.values()}
    assert len(study_ids) == 1

    job = orthanc.store_to("breastnode", sorted(study_ids))
    assert job.get("Failures", 0) == 0, job
    assert job.get("InstancesCount") == 4, job

    listing = node.cli("instances", str(first.StudyInstanceUID), "--json")
    assert listing.returncode == 0, listing.stderr
    rows = json.loads(listing.stdout)
    assert {r["sop_instance_uid"] for r in rows} == set(files)
    for row in rows:
        assert dataset_bytes(Path(row["path"])) == dataset_bytes(files[row["sop_instance_uid"]])

    # The node is a peer Orthanc can also C-ECHO, as hospital IT checks before go-live.
    echo = orthanc.request("POST", "/modalities/breastnode/echo", b"{}")
    assert echo == {}
