"""Nothing acknowledged is lost: SIGKILL in the middle of a send, and aborted transfers.

The node runs as a real subprocess. A pynetdicom SCU sends instances one by one and records
which were answered 0x0000; the node is killed mid-stream, restarted, and every acknowledged
instance must be indexed, on disk, and hash-correct, with no spool leftovers and no index row
without its file (on SQLite and on PostgreSQL).
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import threading
import time
from pathlib import Path

from pydicom.dataset import Dataset
from pynetdicom import AE

from models.synthetic import MG_FOR_PRESENTATION, SyntheticPatient, mammogram, write
from tests.conftest import NodeFactory
from tests.support.helpers import Peer, storescu_command, wait_for

SCU = "CRASHSCU"


def send_until_failure(port: int, datasets: list[Dataset], acknowledged: list[str]) -> None:
    ae = AE(ae_title=SCU)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    ae.add_requested_context(MG_FOR_PRESENTATION, "1.2.840.10008.1.2.1")
    assoc = ae.associate("127.0.0.1", port, ae_title="BREASTNODE")
    assert assoc.is_established
    for ds in datasets:
        try:
            status = assoc.send_c_store(ds)
        except Exception:
            return
        if status.get("Status") == 0x0000:
            acknowledged.append(str(ds.SOPInstanceUID))
        if not assoc.is_established:
            return
    assoc.release()


def test_sigkill_mid_send_loses_nothing_acknowledged(
    node_factory: NodeFactory, tmp_path: Path, database_url: str
) -> None:
    db = "" if database_url.startswith("sqlite") else database_url
    node = node_factory([Peer("crash", SCU)], database_url=db, receivers=2)
    patient = SyntheticPatient()
    first = mammogram(patient, rows=1024, columns=768)
    datasets = [first] + [
        mammogram(patient, study_uid=first.StudyInstanceUID, rows=1024, columns=768, seed=n)
        for n in range(1, 60)
    ]
    acknowledged: list[str] = []
    sender = threading.Thread(target=send_until_failure, args=(node.port, datasets, acknowledged))
    sender.start()
    wait_for(lambda: len(acknowledged) >= 8, timeout=60, interval=0.01)
    node.kill()
    sender.join(30)
    assert 8 <= len(acknowledged) < len(datasets), "the kill must land mid-stream"

    assert not node.children_alive(), "receiver processes outlived the killed node"
    restarted = node_factory([Peer("crash", SCU)], database_url=db, root=node.root)
    listing = restarted.cli("instances", str(first.StudyInstanceUID), "--json")
    assert listing.returncode == 0, listing.stderr
    rows = {r["sop_instance_uid"]: r for r in json.loads(listing.stdout)}
    assert set(acknowledged) <= set(rows)
    for row in rows.values():
        path = Path(row["path"])
        assert path.is_file(), "index row without its file"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row["sha256"]
    assert list((node.root / "spool").iterdir()) == []
    on_disk = {p.resolve() for p in (node.root / "objects").glob("*/*.dcm")}
    assert on_disk == {Path(r["path"]).resolve() for r in rows.values()}


def test_aborted_transfer_leaves_no_spool_file(node_factory: NodeFactory, tmp_path: Path) -> None:
    node = node_factory()
    big = mammogram(SyntheticPatient(), rows=6000, columns=5000)  # 60 MB of pixel data
    path = write(big, tmp_path)
    spool = node.root / "spool"
    sender = subprocess.Popen(
        storescu_command(node.port, [path], "STORESCU", "--max-send-pdu", "16384"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: any(p.stat().st_size > 1_000_000 for p in spool.iterdir()),
            timeout=60,
            interval=0.005,
        )
    finally:
        sender.send_signal(signal.SIGKILL)
        sender.wait(10)
    wait_for(lambda: not any(spool.iterdir()), timeout=20)
    # The receiver removes the file first and logs it after.
    wait_for(lambda: "removed its partial spool file" in node.log.read_text(), timeout=10)
    time.sleep(0.5)
    assert list(spool.iterdir()) == []
    assert list((node.root / "objects").glob("*/*.dcm")) == []
