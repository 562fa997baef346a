"""Results and the delivery outbox on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from storage.outbox import DeliveryState, Outbox, StoredResult, complete_job_with_results
from storage.queue import JobQueue, JobState, LeaseLost

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


def result(n: int) -> StoredResult:
    return StoredResult(
        f"2.25.{n}", "1.2.840.10008.5.1.4.1.1.88.34", f"results/r{n}.dcm", 10, "a" * 64
    )


def finished_job(engine: Engine, destinations: list[str]) -> int:
    queue = JobQueue(engine)
    job_id, _ = queue.enqueue("1.2.3", 1, "analysis", T0)
    assert queue.claim("w", LEASE, now=T0) is not None
    complete_job_with_results(engine, job_id, "w", [result(1), result(2)], destinations, T0)
    return job_id


def test_results_and_deliveries_commit_with_the_job(engine: Engine) -> None:
    job_id = finished_job(engine, ["pacs", "archive"])
    assert JobQueue(engine).jobs()[0].state is JobState.DONE
    rows = Outbox(engine).deliveries()
    assert len(rows) == 4
    assert {(r.sop_instance_uid, r.destination) for r in rows} == {
        ("2.25.1", "pacs"),
        ("2.25.1", "archive"),
        ("2.25.2", "pacs"),
        ("2.25.2", "archive"),
    }
    assert all(r.state is DeliveryState.PENDING for r in rows)
    assert "completed with 2 result(s)" in JobQueue(engine).events(job_id)[-1][2]


def test_a_job_lost_to_another_worker_records_nothing(engine: Engine) -> None:
    queue = JobQueue(engine)
    job_id, _ = queue.enqueue("1.2.3", 1, "analysis", T0)
    queue.claim("old", LEASE, now=T0)
    queue.recover_expired(now=T0 + timedelta(minutes=5))
    with pytest.raises(LeaseLost):
        complete_job_with_results(engine, job_id, "old", [result(1)], ["pacs"], T0)
    assert Outbox(engine).deliveries() == []


def test_delivery_lifecycle_retry_dead_letter_and_resend(engine: Engine) -> None:
    finished_job(engine, ["pacs"])
    outbox = Outbox(engine)
    first = outbox.claim("s", LEASE, T0)
    second = outbox.claim("s", LEASE, T0)
    assert first is not None and second is not None and first.id != second.id
    assert outbox.claim("s", LEASE, T0) is None
    outbox.delivered(first.id, "s", 0x0000, T0 + timedelta(seconds=1))
    outbox.failed(second.id, "s", 0xA700, "out of resources", T0 + timedelta(seconds=30))
    assert outbox.claim("s", LEASE, T0 + timedelta(seconds=29)) is None
    again = outbox.claim("s", LEASE, T0 + timedelta(seconds=30))
    assert again is not None and again.id == second.id and again.attempts == 2
    assert again.first_attempt_at == T0
    outbox.failed(again.id, "s", 0xA900, "data set does not match", None)
    states = {d.id: d for d in outbox.deliveries()}
    assert states[first.id].state is DeliveryState.DELIVERED
    assert states[first.id].delivered_at == T0 + timedelta(seconds=1)
    assert states[second.id].state is DeliveryState.DEAD
    assert states[second.id].last_status == 0xA900
    # Resend: only the dead row comes back, the delivered one is never sent again.
    assert outbox.resend(T0 + timedelta(hours=1)) == 1
    assert outbox.resend(T0 + timedelta(hours=1), ids=[first.id]) == 0
    back = outbox.claim("s", LEASE, T0 + timedelta(hours=1))
    assert back is not None and back.id == second.id and back.attempts == 1
    assert outbox.claim("s", LEASE, T0 + timedelta(hours=1)) is None


def test_sender_lost_mid_send_is_recovered_and_fenced(engine: Engine) -> None:
    finished_job(engine, ["pacs"])
    outbox = Outbox(engine)
    held = outbox.claim("crashed", LEASE, T0)
    assert held is not None
    assert outbox.recover_expired(T0 + timedelta(seconds=59)) == 0
    assert outbox.recover_expired(T0 + timedelta(seconds=61)) == 1
    with pytest.raises(LeaseLost):
        outbox.delivered(held.id, "crashed", 0, T0 + timedelta(seconds=62))
    assert outbox.claim("new", LEASE, T0 + timedelta(seconds=62)) is not None
