"""Retention on SQLite and PostgreSQL: old images go, their rows and results say so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from node.config import Settings
from node.pipeline.scheduler import build_scheduler, purge_expired
from storage.filestore import FileStore
from storage.index import InstanceIndex
from storage.outbox import Outbox, StoredResult, complete_job_with_results
from storage.outbox_tables import ResultObject
from storage.queue import JobQueue
from storage.records import (
    PatientRecord,
    StoredFile,
)
from storage.recovery import reconcile
from storage.times import utcnow
from tests.support.records import received_instance


def store_instance(
    store: FileStore, index: InstanceIndex, study: str, sop: str, received_at: datetime
) -> str:
    spooled = store.spool_dir / f"{sop}.part"
    spooled.write_bytes(b"synthetic " + sop.encode())
    digest = store.digest_and_sync(spooled)
    relative = store.commit(spooled, received_at)
    stored = StoredFile(relative, digest.size, digest.sha256)
    index.add(
        received_instance(
            sop, study, received_at=received_at, patient=PatientRecord("SYN-RET"), file=stored
        )
    )
    return relative


def test_purge_keeps_rows_and_marks_results(engine: Engine, tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    store.prepare()
    index = InstanceIndex(engine)
    now = utcnow()
    old = store_instance(store, index, "1.5.1", "1.5.1.1.1", now - timedelta(days=40))
    new = store_instance(store, index, "1.5.2", "1.5.2.1.1", now - timedelta(days=2))
    queue = JobQueue(engine)
    job_id, _ = queue.enqueue("1.5.1", 1, "analysis")
    queue.claim("w", timedelta(minutes=1))
    result_file = store.spool_dir / "result.part"
    result_file.write_bytes(b"synthetic result")
    result_path = store.commit(result_file, now, results=True)
    complete_job_with_results(
        engine,
        job_id,
        "w",
        [StoredResult("2.25.55", "1.2.840.10008.5.1.4.1.1.7", result_path, 16, "0" * 64)],
        [],
        now,
    )

    settings = Settings(storage={"root": str(store.root), "retention_days": 30})
    assert purge_expired(settings, engine) == 1
    assert purge_expired(settings, engine) == 0
    assert not store.path_of(old).exists()
    assert store.path_of(new).exists()
    [purged] = index.instances("1.5.1")
    assert purged.purged_at is not None
    assert index.instances("1.5.2")[0].purged_at is None
    with Session(engine) as session:
        marked = session.execute(select(ResultObject.source_purged_at)).scalar_one()
    assert marked is not None
    # Start-up reconciliation neither reports the purged file missing nor keeps strays.
    result = reconcile(store, index, Outbox(engine))
    assert result.missing_files == ()
    assert result.orphan_files_removed == 0
    assert store.path_of(result_path).exists()


def test_no_purge_when_retention_is_off(engine: Engine, tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    store.prepare()
    store_instance(
        store, InstanceIndex(engine), "1.6.1", "1.6.1.1.1", datetime(2020, 1, 1, tzinfo=UTC)
    )
    scheduler = build_scheduler(Settings(storage={"root": str(store.root)}), engine)
    assert "retention-purge" not in {job.id for job in scheduler.get_jobs()}
    with_retention = build_scheduler(
        Settings(storage={"root": str(store.root), "retention_days": 1}), engine
    )
    assert "retention-purge" in {job.id for job in with_retention.get_jobs()}
