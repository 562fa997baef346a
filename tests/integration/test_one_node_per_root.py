"""A second ``breastnode serve`` on a storage root in use leaves the running node alone.

Three senders are held mid-transfer by a proxy (each with one image acknowledged and the
next one partly in the spool) while a second node is started on the same configuration, as
a new user would: it must exit at once naming the root and the running node's pid, touch
neither the spool nor the audit trail, and every transfer must then end in 0x0000. A root
configured as shared admits the second node, which leaves the spool to the first.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE

from harness.tcp_proxy import TcpProxy
from models.synthetic import MG_FOR_PRESENTATION, SyntheticPatient, mammogram
from storage.audit import AuditTrail
from storage.db import open_engine
from tests.conftest import NodeFactory
from tests.support.cli import breastnode_process
from tests.support.helpers import NodeProcess, Peer, wait_for

SENDERS = 3
ROWS, COLUMNS = 256, 256  # 128 KiB of pixel data per image
HELD_AFTER = 1024 + 3 * ROWS * COLUMNS  # bytes: the first image and half of the second


@dataclass
class Sender:
    """One association through the proxy, two images, the statuses it was answered."""

    port: int
    datasets: list[Dataset]
    statuses: list[int] = field(default_factory=list)

    def run(self) -> None:
        ae = AE(ae_title="STORESCU")
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 120
        ae.add_requested_context(MG_FOR_PRESENTATION, "1.2.840.10008.1.2.1")
        assoc = ae.associate("127.0.0.1", self.port, ae_title="BREASTNODE")
        if not assoc.is_established:
            return
        for ds in self.datasets:
            answer = assoc.send_c_store(ds)
            self.statuses.append(int(answer.get("Status", -1)))
        assoc.release()


@dataclass
class HeldTransfers:
    node: NodeProcess
    proxy: TcpProxy
    senders: list[Sender]
    threads: list[threading.Thread]

    def spool(self) -> set[Path]:
        return set((self.node.root / "spool").iterdir())

    def finish(self) -> None:
        self.proxy.resume()
        for thread in self.threads:
            thread.join(120)


def hold_transfers(node: NodeProcess) -> HeldTransfers:
    proxy = TcpProxy("127.0.0.1", node.port).start()
    proxy.pause_after(HELD_AFTER)
    patient = SyntheticPatient()
    senders = [
        Sender(
            proxy.port,
            [mammogram(patient, rows=ROWS, columns=COLUMNS, seed=2 * n + k) for k in range(2)],
        )
        for n in range(SENDERS)
    ]
    threads = [threading.Thread(target=s.run, daemon=True) for s in senders]
    for thread in threads:
        thread.start()
    held = HeldTransfers(node, proxy, senders, threads)
    # Each sender's first image answered and its second one partly spooled.
    wait_for(
        lambda: len(held.spool()) == SENDERS and all(s.statuses == [0] for s in senders),
        timeout=60,
    )
    return held


def audit_count(node: NodeProcess) -> int:
    engine = open_engine(f"sqlite:///{node.root / 'index.sqlite3'}")
    try:
        return len(AuditTrail(engine).records())
    finally:
        engine.dispose()


@pytest.fixture
def running(node_factory: NodeFactory) -> Iterator[NodeProcess]:
    yield node_factory([Peer("sender", "STORESCU")])


def test_second_node_on_the_root_exits_and_touches_nothing(running: NodeProcess) -> None:
    held = hold_transfers(running)
    try:
        spooled = held.spool()
        audited = audit_count(running)
        assert running.process is not None

        second = breastnode_process(running.config, "serve", timeout=120)

        assert held.spool() == spooled, "the refused start touched the running node's spool"
        assert audit_count(running) == audited, "the refused start wrote audit records"
        assert second.returncode == 1, second.stderr
        message = second.stderr.strip().splitlines()[-1]
        assert str(running.root) in message, message
        assert f"pid {running.process.pid}" in message, message
        assert "Traceback" not in second.stderr
    finally:
        held.finish()
    assert [s.statuses for s in held.senders] == [[0, 0]] * SENDERS
    assert held.spool() == set()
    assert len(list((running.root / "objects").glob("*/*.dcm"))) == 2 * SENDERS


def test_a_shared_root_admits_a_second_node_that_leaves_the_spool_alone(
    node_factory: NodeFactory,
) -> None:
    shared = {"BREASTNODE_STORAGE__SHARED": "true"}
    first = node_factory([Peer("sender", "STORESCU")], env=shared)
    held = hold_transfers(first)
    try:
        spooled = held.spool()
        second = node_factory([Peer("sender", "STORESCU")], root=first.root, env=shared)
        wait_for(lambda: "start-up reconciliation skipped" in second.log.read_text(), timeout=10)
        assert held.spool() == spooled
    finally:
        held.finish()
    assert [s.statuses for s in held.senders] == [[0, 0]] * SENDERS
    assert len(list((first.root / "objects").glob("*/*.dcm"))) == 2 * SENDERS
