"""Results and the delivery outbox on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from storage.leases import LeaseLost
from storage.outbox import DeliveryState, Outbox, StoredResult, complete_job_with_results
from storage.queue import JobQueue, JobState

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


def finished_study(
    engine: Engine, study: str, version: int, first: int, destinations: list[str], count: int = 2
) -> None:
    """A done analysis of ``study`` (``version``) with results 2.25.<first> onwards."""
    queue = JobQueue(engine)
    job_id, _ = queue.enqueue(study, version, "analysis", T0)
    assert queue.claim("w", LEASE, now=T0) is not None
    results = [result(n) for n in range(first, first + count)]
    complete_job_with_results(engine, job_id, "w", results, destinations, T0)


def test_a_study_versions_rows_for_a_destination_are_claimed_together(engine: Engine) -> None:
    finished_study(engine, "1.2.3", 1, 1, ["pacs", "archive"])
    finished_study(engine, "1.2.3", 2, 3, ["pacs", "archive"])  # a later version: apart
    finished_study(engine, "1.2.4", 1, 5, ["pacs", "archive"])
    outbox = Outbox(engine)
    batches = []
    while batch := outbox.claim_study("s", LEASE, T0):
        batches.append(batch)
    assert len(batches) == 6
    for batch in batches:
        assert len(batch) == 2
        assert len({(d.study_instance_uid, d.version, d.destination) for d in batch}) == 1
        assert all(d.state is DeliveryState.SENDING and d.attempts == 1 for d in batch)
    claimed = [d.id for batch in batches for d in batch]
    assert sorted(claimed) == sorted(d.id for d in outbox.deliveries())  # each row once
    assert outbox.claim_study("s", LEASE, T0 + timedelta(hours=1)) == []


def test_a_study_claim_keeps_each_rows_back_off_and_holder(engine: Engine) -> None:
    finished_study(engine, "1.2.3", 1, 1, ["pacs"], count=4)
    outbox = Outbox(engine)
    other = outbox.claim("other", LEASE, T0)  # held by another sender: left alone
    assert other is not None
    batch = outbox.claim_study("s", LEASE, T0)
    assert len(batch) == 3 and other.id not in {d.id for d in batch}
    outbox.failed(batch[0].id, "s", 0xA700, "out of resources", T0 + timedelta(seconds=30))
    outbox.delivered(batch[1].id, "s", 0x0000, T0)
    outbox.failed(batch[2].id, "s", None, "peer unreachable", T0 + timedelta(seconds=60))
    assert outbox.claim_study("s", LEASE, T0 + timedelta(seconds=29)) == []
    due = outbox.claim_study("s", LEASE, T0 + timedelta(seconds=30))  # only the due one
    assert [d.id for d in due] == [batch[0].id] and due[0].attempts == 2
    later = outbox.claim_study("s", LEASE, T0 + timedelta(seconds=60))
    assert [d.id for d in later] == [batch[2].id]


def test_heartbeat_many_extends_only_the_rows_still_held(engine: Engine) -> None:
    finished_study(engine, "1.2.3", 1, 1, ["pacs"])
    outbox = Outbox(engine)
    batch = outbox.claim_study("s", LEASE, T0)
    ids = [d.id for d in batch]
    assert outbox.heartbeat_many(ids, "s", LEASE, T0 + timedelta(seconds=50)) == set(ids)
    # extended: not expired at T0 + 61 s, though claimed with a 60 s lease at T0
    assert outbox.recover_expired(T0 + timedelta(seconds=61)) == 0
    outbox.delivered(ids[0], "s", 0x0000, T0 + timedelta(seconds=62))
    assert outbox.heartbeat_many(ids, "s", LEASE, T0 + timedelta(seconds=63)) == {ids[1]}
    assert outbox.heartbeat_many(ids, "intruder", LEASE, T0 + timedelta(seconds=63)) == set()
    assert outbox.recover_expired(T0 + timedelta(seconds=124)) == 1
    assert outbox.heartbeat_many(ids, "s", LEASE, T0 + timedelta(seconds=125)) == set()
