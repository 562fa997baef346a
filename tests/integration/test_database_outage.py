"""PostgreSQL gone for a while: the node refuses to acknowledge, waits, and carries on.

The node reaches its database through a proxy that the test cuts (as a stopped server: open
connections closed, new ones refused) and restores; the shared PostgreSQL server itself is
never stopped. While it is cut, C-STORE is answered 0xA700 (transient: the sender retries),
C-ECHO still works, /metrics and /healthz say the database is down, and the study acknowledged
just before waits for its analysis and delivery; once it is back both studies are analysed
and delivered without a restart, and the log tells the outage once per process.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

from pydicom.dataset import Dataset
from pynetdicom import AE
from sqlalchemy.engine import make_url

from harness.tcp_proxy import TcpProxy
from models.synthetic import MR_IMAGE, SyntheticPatient, mr_slice
from tests.conftest import NodeFactory
from tests.support.helpers import NodeProcess, Peer, echoscu, free_port, wait_for
from tests.support.peers import StoreSCP

PIPELINE = """
[pipeline]
analysis = "tests.support.standin_analysis:analyse"
quiet_seconds = 2
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
OUTAGE_S = 6
A700 = 0xA700


def store(port: int, ds: Dataset) -> int:
    ae = AE(ae_title="STORESCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    ae.add_requested_context(MR_IMAGE, "1.2.840.10008.1.2.1")
    assoc = ae.associate("127.0.0.1", port, ae_title="BREASTNODE")
    assert assoc.is_established
    status = int(assoc.send_c_store(ds).get("Status", -1))
    assoc.release()
    return status


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def deliveries(node: NodeProcess) -> list[dict[str, object]]:
    return list(json.loads(node.cli("deliveries", "--json").stdout))


def test_postgresql_outage_pauses_ingest_and_pipeline_then_both_resume(
    node_factory: NodeFactory, postgres_url: str, tmp_path: Path
) -> None:
    database = make_url(postgres_url)
    assert database.host is not None and database.port is not None
    proxy = TcpProxy(database.host, database.port).start()
    pacs = StoreSCP(tmp_path / "pacs").start()
    metrics_port = free_port()
    try:
        node = node_factory(
            [
                Peer("storescu", "STORESCU"),
                Peer("echoscu", "ECHOSCU"),
                Peer("pacs", "PACS", "127.0.0.1", pacs.port),
            ],
            database_url=database.set(port=proxy.port).render_as_string(hide_password=False),
            extra=PIPELINE,
            metrics_port=metrics_port,
        )
        patient = SyntheticPatient()
        before, during = mr_slice(patient), mr_slice(patient)
        assert store(node.port, before) == 0x0000
        proxy.cut()  # before the quiet period has opened the study's analysis
        cut_at = time.monotonic()

        refused = []
        while time.monotonic() - cut_at < OUTAGE_S:
            refused.append(store(node.port, during))
            time.sleep(0.5)
        assert set(refused) == {A700}, refused
        assert echoscu(node.port).returncode == 0
        health, body = http_get(metrics_port, "/healthz")
        assert health == 503 and json.loads(body)["checks"]["database"] is False
        scrape, metrics = http_get(metrics_port, "/metrics")
        assert scrape == 200 and "breastnode_database_up 0.0" in metrics
        assert node.process is not None and node.process.poll() is None

        proxy.restore()
        assert wait_for(lambda: store(node.port, during) == 0x0000, timeout=30, interval=0.2)
        wait_for(
            lambda: sorted(str(d["state"]) for d in deliveries(node)) == ["delivered"] * 2,
            timeout=90,
        )
        assert len(pacs.received()) == 2

        listed = json.loads(node.cli("studies", "--json").stdout)
        studies = {s["study_instance_uid"] for s in listed}
        assert studies == {str(before.StudyInstanceUID), str(during.StudyInstanceUID)}
        log = node.log.read_text()
        down = log.count("index database unavailable (")
        back = log.count("index database back after")
        # one line per process that noticed (supervisor, receivers, pipeline worker), not
        # one per sweep, poll or refused store
        assert 1 <= down <= 4 and 1 <= back <= 4, (down, back)
        for repeated in ("step failed", "raised an exception", "Traceback"):
            assert repeated not in log, repeated
        assert node.stop() == 0
    finally:
        proxy.stop()
        pacs.stop()
