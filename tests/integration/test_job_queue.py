"""The job queue on SQLite and PostgreSQL: idempotent enqueue, atomic claim, leases, events."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from node.config import load_settings
from storage.db import open_index
from storage.leases import LeaseLost
from storage.queue import JobQueue, JobState
from tests.support.cli import breastnode, models_config

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


def test_dead_jobs_are_requeued_with_a_fresh_window_and_done_ones_never(engine: Engine) -> None:
    queue = JobQueue(engine)
    dead, _ = queue.enqueue("1.2.3", 1, "analysis", T0)
    done, _ = queue.enqueue("1.2.4", 1, "analysis", T0)
    chosen, _ = queue.enqueue("1.2.5", 1, "analysis", T0)
    claimed = [queue.claim("w1", LEASE, now=T0) for _ in range(3)]
    assert [job.id for job in claimed if job is not None] == [dead, done, chosen]
    queue.fail(dead, "w1", "model missing", None, now=T0 + timedelta(seconds=1))
    queue.fail(chosen, "w1", "model missing", None, now=T0 + timedelta(seconds=1))
    queue.complete(done, "w1", now=T0 + timedelta(seconds=2))
    later = T0 + timedelta(hours=2)
    assert queue.requeue(later, ids=[chosen, done]) == 1  # the done one stays done
    assert queue.requeue(later) == 1  # every dead one: the other
    assert queue.requeue(later) == 0
    states = {job.id: job for job in queue.jobs()}
    assert states[done].state is JobState.DONE
    for job_id in (dead, chosen):
        job = states[job_id]
        assert (job.state, job.attempts, job.next_run_at) == (JobState.QUEUED, 0, later)
        assert job.first_attempt_at is None and job.finished_at is None
        assert job.last_error == "model missing"  # what happened stays readable
        assert [d for _, t, d in queue.events(job_id)][-1] == "requeued"
    again = queue.claim("w2", LEASE, now=later)
    assert again is not None and again.attempts == 1 and again.first_attempt_at == later


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


def test_breastnode_requeue_puts_dead_jobs_back(tmp_path: Path) -> None:
    config = models_config(tmp_path)
    engine, _index = open_index(load_settings(config).database_url)
    queue = JobQueue(engine)
    job_id, _ = queue.enqueue("1.2.3", 1, "analysis", T0)
    queue.claim("w1", LEASE, now=T0)
    queue.fail(job_id, "w1", "model missing", None, now=T0)
    engine.dispose()
    missing = breastnode(config, "requeue", "999")
    assert missing.returncode == 1 and "0 chosen jobs queued again" in missing.stdout
    requeued = breastnode(config, "requeue")
    assert requeued.returncode == 0, requeued.stderr
    assert "1 dead-lettered job queued again" in requeued.stdout
    assert [job.state for job in queue.jobs()] == [JobState.QUEUED]
