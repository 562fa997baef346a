"""The one lease mechanism, seen from both queues: deliveries leave an events row per change of
state as jobs do, their heartbeat is recorded, and a job finishes one way, with or without
results (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from storage.leases import LeaseLost
from storage.outbox import Outbox, StoredResult, complete_job_with_results
from storage.outbox_tables import Delivery
from storage.queue import JobQueue, JobState

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


def result(n: int) -> StoredResult:
    return StoredResult(
        f"2.25.{n}", "1.2.840.10008.5.1.4.1.1.88.34", f"results/r{n}.dcm", 10, "a" * 64
    )


def two_deliveries(engine: Engine) -> Outbox:
    queue = JobQueue(engine)
    job_id, _ = queue.enqueue("1.2.3", 1, "analysis", T0)
    assert queue.claim("w", LEASE, now=T0) is not None
    complete_job_with_results(engine, job_id, "w", [result(1), result(2)], ["pacs"], T0)
    return Outbox(engine)


def states(outbox: Outbox, delivery_id: int) -> list[tuple[str | None, str]]:
    return [(before, after) for before, after, _ in outbox.events(delivery_id)]


def test_every_delivery_transition_leaves_an_event(engine: Engine) -> None:
    outbox = two_deliveries(engine)
    first = outbox.claim("s", LEASE, T0)
    second = outbox.claim("s", LEASE, T0)
    assert first is not None and second is not None
    outbox.delivered(first.id, "s", 0x0000, T0 + timedelta(seconds=1))
    outbox.failed(second.id, "s", 0xA700, "out of resources", T0 + timedelta(seconds=30), T0)
    again = outbox.claim("s", LEASE, T0 + timedelta(seconds=30))
    assert again is not None and again.id == second.id
    outbox.failed(again.id, "s", 0xA900, "data set does not match", None, T0)
    assert outbox.resend(T0 + timedelta(hours=1)) == 1
    lost = outbox.claim("crashed", LEASE, T0 + timedelta(hours=1))
    assert lost is not None and lost.id == second.id
    assert outbox.recover_expired(T0 + timedelta(hours=2)) == 1

    assert states(outbox, first.id) == [
        (None, "pending"),
        ("pending", "sending"),
        ("sending", "delivered"),
    ]
    assert states(outbox, second.id) == [
        (None, "pending"),
        ("pending", "sending"),
        ("sending", "pending"),
        ("pending", "sending"),
        ("sending", "dead"),
        ("dead", "pending"),
        ("pending", "sending"),
        ("sending", "pending"),
    ]
    details = [detail or "" for _, _, detail in outbox.events(second.id)]
    assert details[0] == "queued" and details[1] == "claimed"
    assert "out of resources" in details[2] and "retry at" in details[2]
    assert details[4] == "dead: data set does not match"
    assert details[5] == "resent"
    assert details[7] == "lease expired"


def test_a_study_batch_claim_records_each_row(engine: Engine) -> None:
    outbox = two_deliveries(engine)
    batch = outbox.claim_study("s", LEASE, T0)
    assert len(batch) == 2
    for delivery in batch:
        assert states(outbox, delivery.id)[-1] == ("pending", "sending")


def test_the_delivery_heartbeat_extends_the_lease_and_records_the_beat(engine: Engine) -> None:
    outbox = two_deliveries(engine)
    held = outbox.claim("s", LEASE, T0)
    assert held is not None
    beat = T0 + timedelta(seconds=50)
    assert outbox.heartbeat_many([held.id], "s", LEASE, beat) == {held.id}
    with Session(engine) as session:
        row = session.execute(select(Delivery).where(Delivery.id == held.id)).scalar_one()
        heartbeat_at, expires = row.heartbeat_at, row.lease_expires_at
    assert heartbeat_at is not None and expires is not None
    assert heartbeat_at.replace(tzinfo=UTC) == beat
    assert expires.replace(tzinfo=UTC) == beat + LEASE


def test_a_job_finishes_one_way_with_or_without_results(engine: Engine) -> None:
    """Both ways of finishing a job write the same transition, and both are fenced."""
    queue = JobQueue(engine)
    plain, _ = queue.enqueue("1.2.3", 1, "analysis", T0)
    with_results, _ = queue.enqueue("1.2.4", 1, "analysis", T0)
    assert queue.claim("w", LEASE, now=T0) is not None
    assert queue.claim("w", LEASE, now=T0) is not None
    queue.complete(plain, "w", now=T0)
    complete_job_with_results(engine, with_results, "w", [result(1)], ["pacs"], T0)
    for job_id in (plain, with_results):
        before, after, _ = queue.events(job_id)[-1]
        assert (before, after) == (JobState.RUNNING.value, JobState.DONE.value)
    done = {job.id: job for job in queue.jobs()}
    assert done[plain].finished_at == done[with_results].finished_at == T0
    assert done[plain].lease_expires_at is None and done[with_results].lease_expires_at is None
    with pytest.raises(LeaseLost):
        complete_job_with_results(engine, plain, "w", [result(2)], ["pacs"], T0)
    assert len(Outbox(engine).deliveries()) == 1
