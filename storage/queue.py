"""The persistent job queue: idempotent enqueue, atomic claim, leases, every transition logged.

A claim is a conditional UPDATE (``... WHERE id = :id AND state = 'queued'``) whose rowcount
tells whether this worker won; on PostgreSQL the candidate is picked with
``FOR UPDATE SKIP LOCKED`` so concurrent workers never wait on each other's rows. A running
job carries a lease that the worker extends by heartbeats; a job whose lease ran out (its
worker died) goes back to the queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, Engine, Update, and_, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.claims import claim_first, rows_changed
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


class LeaseLost(Exception):
    """The job is no longer this worker's (its lease expired and it was re-queued)."""


class JobQueue:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._postgres = engine.dialect.name == "postgresql"

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
        due = and_(Job.state == JobState.QUEUED.value, Job.next_run_at <= now)
        if kinds:
            due = and_(due, Job.kind.in_(list(kinds)))
        candidates = select(Job.id).where(due).order_by(Job.next_run_at, Job.id).limit(1)

        def take(job_id: int) -> Update:
            return (
                update(Job)
                .where(Job.id == job_id, Job.state == JobState.QUEUED.value)
                .values(
                    state=JobState.RUNNING.value,
                    worker_id=worker_id,
                    attempts=Job.attempts + 1,
                    lease_expires_at=now + lease,
                    heartbeat_at=now,
                    first_attempt_at=func.coalesce(Job.first_attempt_at, now),
                )
            )

        def won(session: Session, job_id: int) -> JobView:
            record_event(
                session, job_id, JobState.QUEUED, JobState.RUNNING, worker_id, now, "claimed"
            )
            return _view(session.get_one(Job, job_id))

        return claim_first(self.engine, candidates, take, won)

    def heartbeat(
        self, job_id: int, worker_id: str, lease: timedelta, now: datetime | None = None
    ) -> None:
        now = now or utcnow()
        with Session(self.engine) as session, session.begin():
            extended = rows_changed(
                session,
                update(Job)
                .where(*owned_job(job_id, worker_id))
                .values(heartbeat_at=now, lease_expires_at=now + lease),
            )
        if extended != 1:
            raise LeaseLost(f"job {job_id} is no longer held by {worker_id}")

    def complete(self, job_id: int, worker_id: str, now: datetime | None = None) -> None:
        self._finish(job_id, worker_id, JobState.DONE, now or utcnow(), None, "completed")

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
            self._finish(job_id, worker_id, JobState.DEAD, now, error, f"dead: {error}")
            return
        with Session(self.engine) as session, session.begin():
            changed = rows_changed(
                session,
                update(Job)
                .where(*owned_job(job_id, worker_id))
                .values(
                    state=JobState.QUEUED.value,
                    next_run_at=retry_at,
                    last_error=error,
                    lease_expires_at=None,
                    worker_id=None,
                ),
            )
            if changed != 1:
                raise LeaseLost(f"job {job_id} is no longer held by {worker_id}")
            record_event(
                session,
                job_id,
                JobState.RUNNING,
                JobState.QUEUED,
                worker_id,
                now,
                f"retry at {retry_at.isoformat()}: {error}",
            )

    def _finish(
        self,
        job_id: int,
        worker_id: str,
        state: JobState,
        now: datetime,
        error: str | None,
        detail: str,
    ) -> None:
        with Session(self.engine) as session, session.begin():
            values: dict[str, object] = {
                "state": state.value,
                "finished_at": now,
                "lease_expires_at": None,
            }
            if error is not None:
                values["last_error"] = error
            changed = rows_changed(
                session, update(Job).where(*owned_job(job_id, worker_id)).values(**values)
            )
            if changed != 1:
                raise LeaseLost(f"job {job_id} is no longer held by {worker_id}")
            record_event(session, job_id, JobState.RUNNING, state, worker_id, now, detail)

    def recover_expired(self, now: datetime | None = None) -> list[int]:
        """Re-queue running jobs whose lease ran out; returns their ids."""
        now = now or utcnow()
        with Session(self.engine) as session, session.begin():
            expired = select(Job.id, Job.worker_id).where(
                Job.state == JobState.RUNNING.value, Job.lease_expires_at < now
            )
            if self._postgres:
                expired = expired.with_for_update(skip_locked=True)
            recovered = []
            for job_id, worker_id in session.execute(expired).all():
                changed = rows_changed(
                    session,
                    update(Job)
                    .where(
                        Job.id == job_id,
                        Job.state == JobState.RUNNING.value,
                        Job.lease_expires_at < now,
                    )
                    .values(
                        state=JobState.QUEUED.value,
                        worker_id=None,
                        lease_expires_at=None,
                        next_run_at=now,
                        last_error="lease expired (worker lost)",
                    ),
                )
                if changed == 1:
                    record_event(
                        session,
                        job_id,
                        JobState.RUNNING,
                        JobState.QUEUED,
                        worker_id,
                        now,
                        "lease expired",
                    )
                    recovered.append(int(job_id))
            return recovered

    def jobs(self, states: Sequence[JobState] | None = None) -> list[JobView]:
        query = select(Job).order_by(Job.id)
        if states:
            query = query.where(Job.state.in_([s.value for s in states]))
        with Session(self.engine) as session:
            return [_view(job) for job in session.execute(query).scalars()]

    def events(self, job_id: int) -> list[tuple[str | None, str, str | None]]:
        """(from, to, detail) of every transition of a job, oldest first."""
        query = select(JobEvent).where(JobEvent.job_fk == job_id).order_by(JobEvent.id)
        with Session(self.engine) as session:
            return [(e.from_state, e.to_state, e.detail) for e in session.execute(query).scalars()]


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
        record_event(session, created, None, JobState.QUEUED, None, now, "enqueued")
        return int(created), True
    existing = session.execute(
        select(Job.id).where(
            Job.study_instance_uid == study_instance_uid,
            Job.version == version,
            Job.kind == kind,
        )
    ).scalar_one()
    return int(existing), False


def owned_job(job_id: int, worker_id: str) -> tuple[ColumnElement[bool], ...]:
    return (Job.id == job_id, Job.state == JobState.RUNNING.value, Job.worker_id == worker_id)


def record_event(
    session: Session,
    job_id: int,
    from_state: JobState | None,
    to_state: JobState,
    worker_id: str | None,
    now: datetime,
    detail: str,
) -> None:
    session.execute(
        insert(JobEvent).values(
            job_fk=job_id,
            at=now,
            from_state=from_state.value if from_state else None,
            to_state=to_state.value,
            worker_id=worker_id,
            detail=detail,
        )
    )


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
