"""The persistent job queue: idempotent enqueue, atomic claim, leases, every transition logged.

A claim is a conditional UPDATE (``... WHERE id = :id AND state = 'queued'``) whose rowcount
tells whether this worker won; on PostgreSQL the candidate is picked with
``FOR UPDATE SKIP LOCKED`` so concurrent workers never wait on each other's rows. A running
job carries a lease that the worker extends by heartbeats; a job whose lease ran out (its
worker died) goes back to the queue. The lease itself is :mod:`storage.leases`, shared with
the delivery outbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Engine, and_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.leases import LeasedTable, LeaseLost, Transition
from storage.queue_tables import Job, JobEvent
from storage.times import aware, aware_required, utcnow


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"


@dataclass(frozen=True)
class JobView:
    id: int
    study_instance_uid: str
    version: int
    kind: str
    state: JobState
    attempts: int
    next_run_at: datetime
    lease_expires_at: datetime | None
    worker_id: str | None
    last_error: str | None
    created_at: datetime
    first_attempt_at: datetime | None
    finished_at: datetime | None


JOBS = LeasedTable(
    rows=Job,
    events=JobEvent,
    noun="job",
    waiting=JobState.QUEUED.value,
    held=JobState.RUNNING.value,
    dead=JobState.DEAD.value,
    due_at="next_run_at",
    fk="job_fk",
)


class JobQueue:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def enqueue(
        self, study_instance_uid: str, version: int, kind: str, now: datetime | None = None
    ) -> tuple[int, bool]:
        """The job's id, and whether this call created it (False: it already existed)."""
        with Session(self.engine) as session, session.begin():
            return enqueue_in(session, study_instance_uid, version, kind, now or utcnow())

    def claim(
        self,
        worker_id: str,
        lease: timedelta,
        kinds: Sequence[str] | None = None,
        now: datetime | None = None,
    ) -> JobView | None:
        """Take the oldest due job, or None when there is none."""
        now = now or utcnow()
        due = JOBS.due(now)
        if kinds:
            due = and_(due, Job.kind.in_(list(kinds)))

        def view(session: Session, job_id: int) -> JobView:
            return _view(session.get_one(Job, job_id))

        return JOBS.claim(self.engine, worker_id, lease, now, due, view)

    def heartbeat(
        self, job_id: int, worker_id: str, lease: timedelta, now: datetime | None = None
    ) -> None:
        if not JOBS.heartbeat(self.engine, [job_id], worker_id, lease, now or utcnow()):
            raise LeaseLost(f"job {job_id} is no longer held by {worker_id}")

    def complete(self, job_id: int, worker_id: str, now: datetime | None = None) -> None:
        """Done, with no results (``storage.outbox.complete_job_with_results`` finishes a
        job with its results, through the same :func:`complete_in`)."""
        with Session(self.engine) as session, session.begin():
            complete_in(session, job_id, worker_id, now or utcnow(), "completed")

    def fail(
        self,
        job_id: int,
        worker_id: str,
        error: str,
        retry_at: datetime | None,
        now: datetime | None = None,
    ) -> None:
        """Back to the queue at ``retry_at``, or dead when ``retry_at`` is None."""
        now = now or utcnow()
        if retry_at is None:
            JOBS.settle(
                self.engine,
                job_id,
                worker_id,
                JobState.DEAD.value,
                now,
                f"dead: {error}",
                last_error=error,
                finished_at=now,
            )
            return
        JOBS.settle(
            self.engine,
            job_id,
            worker_id,
            JobState.QUEUED.value,
            now,
            f"retry at {retry_at.isoformat()}: {error}",
            last_error=error,
            next_run_at=retry_at,
        )

    def recover_expired(self, now: datetime | None = None) -> list[int]:
        """Re-queue running jobs whose lease ran out; returns their ids."""
        return JOBS.recover_expired(self.engine, now or utcnow(), "lease expired (worker lost)")

    def requeue(self, now: datetime, ids: Sequence[int] | None = None) -> int:
        """Put dead-lettered jobs (or the chosen ones, unless done or running) back in the
        queue with a fresh retry window: after the cause (a model, a setting) is mended."""
        return JOBS.requeue(self.engine, now, ids, "requeued", finished_at=None)

    def jobs(self, states: Sequence[JobState] | None = None) -> list[JobView]:
        query = select(Job).order_by(Job.id)
        if states:
            query = query.where(Job.state.in_([s.value for s in states]))
        with Session(self.engine) as session:
            return [_view(job) for job in session.execute(query).scalars()]

    def events(self, job_id: int) -> list[Transition]:
        """(from, to, detail) of every transition of a job, oldest first."""
        return JOBS.transitions(self.engine, job_id)


def enqueue_in(
    session: Session, study_instance_uid: str, version: int, kind: str, now: datetime
) -> tuple[int, bool]:
    """Enqueue inside the caller's transaction (idempotent on study, version and kind)."""
    values = {
        "study_instance_uid": study_instance_uid,
        "version": version,
        "kind": kind,
        "state": JobState.QUEUED.value,
        "attempts": 0,
        "next_run_at": now,
        "created_at": now,
    }
    dialect = session.get_bind().dialect.name
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        dialect_insert(Job)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["study_instance_uid", "version", "kind"])
        .returning(Job.id)
    )
    created = session.execute(statement).scalar()
    if created is not None:
        JOBS.record(session, created, None, JobState.QUEUED.value, None, now, "enqueued")
        return int(created), True
    existing = session.execute(
        select(Job.id).where(
            Job.study_instance_uid == study_instance_uid,
            Job.version == version,
            Job.kind == kind,
        )
    ).scalar_one()
    return int(existing), False


def complete_in(session: Session, job_id: int, worker_id: str, now: datetime, detail: str) -> None:
    """The one way a job is done: in the caller's transaction (which may also commit what
    the job made), conditional on this worker still holding it, with its event."""
    JOBS.settle(session, job_id, worker_id, JobState.DONE.value, now, detail, finished_at=now)


def _view(job: Job) -> JobView:
    return JobView(
        id=job.id,
        study_instance_uid=job.study_instance_uid,
        version=job.version,
        kind=job.kind,
        state=JobState(job.state),
        attempts=job.attempts,
        next_run_at=aware_required(job.next_run_at),
        lease_expires_at=aware(job.lease_expires_at),
        worker_id=job.worker_id,
        last_error=job.last_error,
        created_at=aware_required(job.created_at),
        first_attempt_at=aware(job.first_attempt_at),
        finished_at=aware(job.finished_at),
    )
