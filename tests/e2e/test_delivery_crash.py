"""SIGKILL of the node while a result is on its way to PACS, then restart: it arrives once."""

from __future__ import annotations

import json
from pathlib import Path

from pydicom import dcmread

from models.synthetic import SyntheticPatient, mr_slice, write
from tests.conftest import NodeFactory
from tests.support.helpers import NodeProcess, Peer, storescu, wait_for
from tests.support.peers import StoreSCP

PIPELINE = """
[pipeline]
analysis = "tests.support.standin_analysis:analyse"
quiet_seconds = 1
sweep_interval_seconds = 0.5
lease_seconds = 10
poll_seconds = 0.2
[routing]
result_destinations = ["pacs"]
[delivery]
backoff_base_seconds = 0.5
backoff_cap_seconds = 2
timeout_s = 20
"""


def deliveries(node: NodeProcess) -> list[dict[str, object]]:
    return list(json.loads(node.cli("deliveries", "--json").stdout))


def test_sigkill_during_delivery_then_restart(node_factory: NodeFactory, tmp_path: Path) -> None:
    # So slow that the kill, however late the polls see "sending", lands mid-send; the PACS
    # is then restarted at full speed on the same port and folder for the restarted node.
    slow_pacs = StoreSCP(tmp_path / "pacs").start("--sleep-during", "30")
    try:
        peers = [Peer("storescu", "STORESCU"), Peer("pacs", "PACS", "127.0.0.1", slow_pacs.port)]
        node = node_factory(peers, extra=PIPELINE)
        path = write(mr_slice(SyntheticPatient()), tmp_path / "in")
        sent = storescu(node.port, [path])
        assert sent.returncode == 0
        wait_for(lambda: any(d["state"] == "sending" for d in deliveries(node)), timeout=30)
        node.kill()
        assert not node.children_alive()
        slow_pacs.stop()
        slow_pacs.start()

        restarted = node_factory(peers, extra=PIPELINE, root=node.root, port=node.port)
        wait_for(lambda: [d["state"] for d in deliveries(restarted)] == ["delivered"], timeout=60)
        [row] = deliveries(restarted)
        assert int(str(row["attempts"])) == 2
        received = [
            str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in slow_pacs.received()
        ]
        assert received.count(str(row["sop_instance_uid"])) == 1
        assert len(json.loads(restarted.cli("jobs", "--json").stdout)) == 1
    finally:
        slow_pacs.stop()
