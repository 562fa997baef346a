"""Delivery from the outbox to real peers that are down, refuse or fail, then come back.

Every result must arrive exactly once; back-off shows in the rows; permanent failures are
dead-lettered and can be resent.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from pydicom import dcmread

from models.synthetic import MG_FOR_PRESENTATION, SyntheticPatient, mammogram, write
from node.config import Settings
from node.dicom import scu
from node.pipeline.delivery import DeliverySender, classify_status
from node.pipeline.retry import Failure, RetryPolicy
from storage.db import open_engine
from storage.filestore import FileStore
from storage.migrate import upgrade
from storage.outbox import DeliveryState, Outbox, StoredResult, complete_job_with_results
from storage.queue import JobQueue
from storage.times import utcnow
from tests.support.peers import ScriptedSCP, StoreSCP

LATER = timedelta(hours=1)


def test_status_classification() -> None:
    assert classify_status(0x0000) is None
    assert classify_status(0xB000) is None
    assert classify_status(0xA700) is Failure.TRANSIENT
    assert classify_status(0xA7FF) is Failure.TRANSIENT
    assert classify_status(0x0110) is Failure.TRANSIENT
    assert classify_status(0xA900) is Failure.PERMANENT
    assert classify_status(0xC123) is Failure.PERMANENT
    assert classify_status(0x0122) is Failure.PERMANENT


@dataclass
class Harness:
    outbox: Outbox
    store: FileStore
    sent: list[str]
    tmp: Path

    def sender(self, port: int, ae_title: str = "PACS") -> DeliverySender:
        settings = Settings(
            peers=[{"name": "pacs", "ae_title": ae_title, "host": "127.0.0.1", "port": port}],
            delivery={"timeout_s": 5},
        )
        policy = RetryPolicy(base=timedelta(seconds=10), cap=timedelta(minutes=15))
        return DeliverySender(
            settings, self.outbox, self.store, "sender-1", policy, random.Random(0), send=scu.store
        )

    def drain(self, sender: DeliverySender, at: timedelta = timedelta(0)) -> int:
        """Deliveries attempted until none is due (a study's rows go together, one call)."""
        count = 0
        while (batch := sender.run_once(now=utcnow() + at)) is not None:
            count += len(batch)
        return count


@pytest.fixture
def harness(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    engine = open_engine(database_url)
    upgrade(engine)
    store = FileStore(tmp_path / "store")
    store.prepare()
    results, sent = [], []
    for n in range(3):
        ds = mammogram(SyntheticPatient(), rows=32, columns=32, seed=n)
        path = write(ds, store.spool_dir)
        digest = store.digest_and_sync(path)
        relative = store.commit(path)
        results.append(
            StoredResult(
                str(ds.SOPInstanceUID), str(ds.SOPClassUID), relative, digest.size, digest.sha256
            )
        )
        sent.append(str(ds.SOPInstanceUID))
    queue = JobQueue(engine)
    job_id, _ = queue.enqueue("1.2.3", 1, "analysis")
    queue.claim("w", timedelta(minutes=1))
    complete_job_with_results(engine, job_id, "w", results, ["pacs"], utcnow())
    yield Harness(Outbox(engine), store, sent, tmp_path)
    engine.dispose()


def states(outbox: Outbox) -> list[DeliveryState]:
    return [d.state for d in outbox.deliveries()]


def test_peer_down_then_up_delivers_each_once(harness: Harness) -> None:
    peer = StoreSCP(harness.tmp / "pacs")
    sender = harness.sender(peer.port)
    assert harness.drain(sender) == 3  # nobody listens yet
    rows = harness.outbox.deliveries()
    assert states(harness.outbox) == [DeliveryState.PENDING] * 3
    for row in rows:
        assert row.attempts == 1
        assert row.last_error == "peer unreachable, timed out or aborted"
        assert timedelta(seconds=4) <= row.next_attempt_at - utcnow() <= timedelta(seconds=11)
    assert harness.drain(sender) == 0  # not due yet: back-off
    assert harness.drain(sender, at=timedelta(seconds=12)) == 3  # still down: attempt 2
    assert all(r.attempts == 2 for r in harness.outbox.deliveries())
    peer.start()
    try:
        assert harness.drain(sender, at=LATER) == 3
        assert harness.drain(sender, at=LATER * 2) == 0
        received = {str(dcmread(p).SOPInstanceUID) for p in peer.received()}
        assert received == set(harness.sent)
        assert len(peer.received()) == 3
        assert states(harness.outbox) == [DeliveryState.DELIVERED] * 3
    finally:
        peer.stop()


def test_refusing_peer_is_dead_lettered_and_resent(harness: Harness) -> None:
    peer = StoreSCP(harness.tmp / "pacs").start("--refuse")
    try:
        sender = harness.sender(peer.port)
        assert harness.drain(sender) == 3
        # storescp serves one connection at a time and sometimes drops the next connection
        # while it closes a refused one; such an attempt is transient and simply retried.
        for hour in range(1, 6):
            if DeliveryState.PENDING not in states(harness.outbox):
                break
            harness.drain(sender, at=LATER * hour)
        assert states(harness.outbox) == [DeliveryState.DEAD] * 3
        assert all(
            "rejected (permanent)" in (d.last_error or "") for d in harness.outbox.deliveries()
        )
    finally:
        peer.stop()
    good = StoreSCP(harness.tmp / "pacs2").start()
    try:
        sender = harness.sender(good.port)
        assert harness.outbox.resend(utcnow()) == 3
        assert harness.drain(sender, at=timedelta(seconds=1)) == 3
        assert len(good.received()) == 3
        assert states(harness.outbox) == [DeliveryState.DELIVERED] * 3
    finally:
        good.stop()


def test_failure_statuses_transient_then_permanent(harness: Harness) -> None:
    # 1st object: 0xA700 then success; 2nd: 0xA900 (dead); 3rd: success.
    peer = ScriptedSCP([0xA700, 0xA900]).start([MG_FOR_PRESENTATION])
    try:
        sender = harness.sender(peer.port)
        assert harness.drain(sender) == 3
        rows = harness.outbox.deliveries()
        assert [r.last_status for r in rows] == [0xA700, 0xA900, 0x0000]
        assert [r.state for r in rows] == [
            DeliveryState.PENDING,
            DeliveryState.DEAD,
            DeliveryState.DELIVERED,
        ]
        assert harness.drain(sender, at=LATER) == 1
        assert sorted(peer.received) == sorted([harness.sent[0], harness.sent[2]])
        assert harness.outbox.resend(utcnow(), ids=[rows[1].id]) == 1
        assert harness.drain(sender, at=timedelta(seconds=1)) == 1
        assert sorted(peer.received) == sorted(harness.sent)
    finally:
        peer.stop()


def test_unknown_destination_is_permanent(harness: Harness) -> None:
    settings = Settings(peers=[])
    sender = DeliverySender(
        settings, harness.outbox, harness.store, "s", RetryPolicy(), send=scu.store
    )
    assert harness.drain(sender) == 3
    assert states(harness.outbox) == [DeliveryState.DEAD] * 3
