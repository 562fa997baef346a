"""A send that outlasts its lease keeps the rows: the sender heartbeats while a slow peer
takes its time, so lease recovery running meanwhile takes nothing from it."""

from __future__ import annotations

import random
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from pynetdicom import AE, evt
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from models.synthetic import MG_FOR_PRESENTATION, SyntheticPatient, mammogram, write
from node.config import Settings
from node.dicom import scu
from node.pipeline.delivery import DeliverySender
from node.pipeline.retry import RetryPolicy
from storage.filestore import FileStore
from storage.outbox import DeliveryState, Outbox, StoredResult, complete_job_with_results
from storage.outbox_tables import Delivery
from storage.queue import JobQueue
from storage.times import utcnow
from tests.support.helpers import free_port

LEASE_S = 0.6  # the sender beats every 0.2 s
STALL_S = 2.0  # the peer answers each C-STORE after this long


def queued_result(engine: Engine, store: FileStore) -> str:
    ds = mammogram(SyntheticPatient(), rows=32, columns=32, seed=1)
    path = write(ds, store.spool_dir)
    digest = store.digest_and_sync(path)
    relative = store.commit(path)
    stored = StoredResult(
        str(ds.SOPInstanceUID), str(ds.SOPClassUID), relative, digest.size, digest.sha256
    )
    queue = JobQueue(engine)
    job_id, _ = queue.enqueue("1.2.3", 1, "analysis")
    queue.claim("w", timedelta(minutes=1))
    complete_job_with_results(engine, job_id, "w", [stored], ["pacs"], utcnow())
    return str(ds.SOPInstanceUID)


def test_a_slow_send_keeps_its_lease(engine: Engine, tmp_path: Path) -> None:
    port = free_port()
    store = FileStore(tmp_path / "store")
    store.prepare()
    sent = queued_result(engine, store)
    outbox = Outbox(engine)
    recovered: list[int] = []

    def slow_store(event: Any) -> int:
        time.sleep(STALL_S)
        recovered.append(outbox.recover_expired(utcnow()))  # the scheduler's sweep, meanwhile
        return 0x0000

    ae = AE(ae_title="PACS")
    ae.add_supported_context(MG_FOR_PRESENTATION)
    server = ae.start_server(
        ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, slow_store)]
    )
    try:
        settings = Settings(
            peers=[{"name": "pacs", "ae_title": "PACS", "host": "127.0.0.1", "port": port}],
            delivery={"timeout_s": 10},
            pipeline={"lease_seconds": LEASE_S},
        )
        sender = DeliverySender(
            settings, outbox, store, "sender-1", RetryPolicy(), random.Random(0), send=scu.store
        )
        started = utcnow()
        batch = sender.run_once()
        assert batch is not None and [d.sop_instance_uid for d in batch] == [sent]
    finally:
        server.shutdown()
    assert recovered == [0]
    [row] = outbox.deliveries()
    assert row.state is DeliveryState.DELIVERED and row.attempts == 1
    assert [after for _, after, _ in outbox.events(row.id)] == ["pending", "sending", "delivered"]
    with Session(engine) as session:
        beat = session.execute(select(Delivery.heartbeat_at)).scalar_one()
    assert beat is not None
    assert beat.replace(tzinfo=started.tzinfo) >= started + timedelta(seconds=STALL_S / 2)
