"""Orthanc with DICOM TLS as a hospital PACS: it sends a study to the node over TLS and
receives the results over TLS; calling the node's plain port it is refused, since its peer
entry says TLS. Both echo each other over TLS."""

from __future__ import annotations

import json
import urllib.error
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.orthanc import OrthancTLS
from models.synthetic import screening_study, write
from tests.support.helpers import (
    NodeProcess,
    Peer,
    config_toml,
    echoscu,
    free_port,
    wait_for,
)
from tests.support.orthanc import Orthanc
from tests.support.pki import SitePki, tls_section

PIPELINE = """
[pipeline]
analysis = "tests.support.standin_analysis:analyse"
sweep_interval_seconds = 0.5
poll_seconds = 0.2
[routing]
result_destinations = ["orthanc"]
[delivery]
backoff_base_seconds = 0.5
backoff_cap_seconds = 2
timeout_s = 10
"""


@dataclass
class Site:
    orthanc: Orthanc
    node: NodeProcess


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, site_pki: SitePki, run_logs: Path
) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("orthanc-tls")
    port, plain_port = free_port(), free_port()
    orthanc = Orthanc(
        folder / "orthanc",
        {
            "breastnode": ("BREASTNODE", "127.0.0.1", port),
            "breastnode-plain": ("BREASTNODE", "127.0.0.1", plain_port),
        },
        tls=OrthancTLS(site_pki.pacs.certificate, site_pki.pacs.key, site_pki.ca.certificate),
        tls_modalities=frozenset({"breastnode"}),
    ).start()
    peer = Peer(
        "orthanc", "ORTHANC", port=orthanc.dicom_port, tls=True, certificate_name="pacs.test"
    )
    config = folder / "config.toml"
    extra = tls_section(site_pki.node, site_pki.ca, plain_port=plain_port) + PIPELINE
    config.write_text(config_toml(folder / "store", port, [peer], extra=extra))
    log = run_logs / f"node-orthanc-tls-{uuid.uuid4().hex[:8]}.log"
    node = NodeProcess(config=config, root=folder / "store", port=port, log=log)
    try:
        yield Site(orthanc, node.start(60))
    finally:
        node.stop()
        orthanc.stop()


def test_both_echo_each_other_over_tls(site: Site) -> None:
    echoed = site.node.cli("echo", "orthanc")
    assert echoed.returncode == 0, echoed.stderr
    assert "over TLS: status 0x0000" in echoed.stdout
    assert site.orthanc.request("POST", "/modalities/breastnode/echo", b"{}") == {}
    # Orthanc's port speaks TLS only: a plain association to it fails
    assert echoscu(site.orthanc.dicom_port, "BREASTNODE").returncode != 0


def test_a_study_in_and_its_results_out_over_tls(site: Site, tmp_path: Path) -> None:
    views = screening_study(rows=256, columns=192)
    study_ids = {site.orthanc.upload(write(ds, tmp_path))["ParentStudy"] for ds in views}
    job = site.orthanc.store_to("breastnode", sorted(study_ids))
    assert job.get("Failures", 0) == 0 and job.get("InstancesCount") == 4, job

    listing = site.node.cli("instances", str(views[0].StudyInstanceUID), "--json")
    assert listing.returncode == 0, listing.stderr
    assert len(json.loads(listing.stdout)) == 4

    def delivered() -> bool:
        rows = json.loads(site.node.cli("deliveries", "--json").stdout)
        return bool(rows) and all(row["state"] == "delivered" for row in rows)

    wait_for(delivered, timeout=90)
    query = {"Level": "Instance", "Query": {"Modality": "OT"}}
    assert len(site.orthanc.request("POST", "/tools/find", json.dumps(query).encode())) == 1


def test_orthanc_in_plain_is_refused_by_its_tls_peer_entry(site: Site, tmp_path: Path) -> None:
    views = screening_study(rows=64, columns=48)
    study = site.orthanc.upload(write(views[0], tmp_path))["ParentStudy"]
    with pytest.raises(urllib.error.HTTPError):
        site.orthanc.store_to("breastnode-plain", [study])
    reason = (
        "rejected association from AE 'ORTHANC' at 127.0.0.1: peer orthanc must connect over TLS"
    )
    wait_for(lambda: reason in site.node.log.read_text(errors="replace"))
    listing = site.node.cli("instances", str(views[0].StudyInstanceUID), "--json")
    assert listing.returncode != 0  # nothing stored for that study
