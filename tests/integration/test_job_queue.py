"""The job queue on SQLite and PostgreSQL: idempotent enqueue, atomic claim, leases, events."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from storage.leases import LeaseLost
from storage.queue import JobQueue, JobState

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def test_enqueue_is_idempotent_per_study_version_kind(engine: Engine) -> None:
    queue = JobQueue(engine)
    first, created = queue.enqueue("1.2.3", 1, "analysis", T0)
    again, created_again = queue.enqueue("1.2.3", 1, "analysis", T0 + timedelta(minutes=5))
    other_version, _ = queue.enqueue("1.2.3", 2, "analysis", T0)
    assert (created, created_again) == (True, False)
    assert again == first
    assert other_version != first
    assert len(queue.jobs()) == 2


def test_claim_heartbeat_complete_with_every_transition_recorded(engine: Engine) -> None:
    queue = JobQueue(engine)
    job_id, _ = queue.enqueue("1.2.3", 1, "analysis", T0)
    assert queue.claim("w1", LEASE, now=T0 - timedelta(seconds=1)) is None  # not due yet
    job = queue.claim("w1", LEASE, now=T0)
    assert job is not None and job.id == job_id
    assert (job.state, job.attempts, job.worker_id) == (JobState.RUNNING, 1, "w1")
    assert job.lease_expires_at == T0 + LEASE
    assert queue.claim("w2", LEASE, now=T0) is None  # nothing else queued
    queue.heartbeat(job_id, "w1", LEASE, now=T0 + timedelta(seconds=20))
    assert queue.jobs()[0].lease_expires_at == T0 + timedelta(seconds=50)
    with pytest.raises(LeaseLost):
        queue.heartbeat(job_id, "w2", LEASE, now=T0)
    queue.complete(job_id, "w1", now=T0 + timedelta(seconds=25))
    done = queue.jobs()[0]
    assert done.state is JobState.DONE
    assert done.finished_at == T0 + timedelta(seconds=25)
    assert [(f, t) for f, t, _ in queue.events(job_id)] == [
        (None, "queued"),
        ("queued", "running"),
        ("running", "done"),
    ]


def test_failures_retry_later_or_go_dead(engine: Engine) -> None:
    queue = JobQueue(engine)
    job_id, _ = queue.enqueue("1.2.3", 1, "analysis", T0)
    queue.claim("w1", LEASE, now=T0)
    queue.fail(job_id, "w1", "peer busy", T0 + timedelta(seconds=40), now=T0 + timedelta(seconds=1))
    retrying = queue.jobs()[0]
    assert (retrying.state, retrying.last_error) == (JobState.QUEUED, "peer busy")
    assert queue.claim("w1", LEASE, now=T0 + timedelta(seconds=39)) is None
    again = queue.claim("w1", LEASE, now=T0 + timedelta(seconds=40))
    assert again is not None and again.attempts == 2
    assert again.first_attempt_at == T0
    queue.fail(job_id, "w1", "broken input", None, now=T0 + timedelta(seconds=41))
    assert queue.jobs()[0].state is JobState.DEAD
    assert [t for _, t, _ in queue.events(job_id)] == [
        "queued",
        "running",
        "queued",
        "running",
        "dead",
    ]


def test_expired_lease_is_claimed_again_and_the_old_worker_is_fenced(engine: Engine) -> None:
    queue = JobQueue(engine)
    job_id, _ = queue.enqueue("1.2.3", 1, "analysis", T0)
    queue.claim("dead-worker", LEASE, now=T0)
    assert queue.recover_expired(now=T0 + timedelta(seconds=29)) == []
    assert queue.recover_expired(now=T0 + timedelta(seconds=31)) == [job_id]
    job = queue.claim("w2", LEASE, now=T0 + timedelta(seconds=32))
    assert job is not None and job.worker_id == "w2" and job.attempts == 2
    with pytest.raises(LeaseLost):
        queue.complete(job_id, "dead-worker", now=T0 + timedelta(seconds=33))
    queue.complete(job_id, "w2", now=T0 + timedelta(seconds=34))
    assert "lease expired" in [d for _, _, d in queue.events(job_id)]


def test_concurrent_claims_never_share_a_job(engine: Engine) -> None:
    queue = JobQueue(engine)
    ids = {queue.enqueue(f"1.2.{n}", 1, "analysis", T0)[0] for n in range(30)}
    claimed: list[int] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while (job := queue.claim(name, LEASE, now=T0)) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(claimed) == sorted(ids)
    assert all(j.state is JobState.RUNNING for j in queue.jobs())


def test_claim_filters_by_kind(engine: Engine) -> None:
    queue = JobQueue(engine)
    queue.enqueue("1.2.3", 1, "analysis", T0)
    delivery_id, _ = queue.enqueue("1.2.3", 1, "other", T0)
    job = queue.claim("w", LEASE, kinds=["other"], now=T0)
    assert job is not None and job.id == delivery_id
