"""Result objects and the delivery outbox.

A job's results and their outbox rows are committed in the same transaction that marks the
job done, so a crash either loses the whole (unacknowledged) analysis, which then runs again,
or keeps all of it; never results without deliveries or deliveries of a job that re-runs.
Deliveries are claimed like jobs (conditional UPDATE, SKIP LOCKED on PostgreSQL), a study
version's due rows for one destination together (one association), and a row that reached
``delivered`` is never sent again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Engine, Update, and_, func, insert, select, update
from sqlalchemy.orm import Session

from storage.claims import claim_first, rows_changed
from storage.outbox_tables import Delivery, ResultObject
from storage.queue import JobState, LeaseLost, owned_job, record_event
from storage.queue_tables import Job
from storage.times import aware, aware_required

# The most rows one association carries: a study's results are a handful of objects; this
# bounds a batch's presentation contexts (a few per SOP class, 128 at most) and its lease.
STUDY_BATCH = 32


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    DEAD = "dead"


@dataclass(frozen=True)
class StoredResult:
    sop_instance_uid: str
    sop_class_uid: str
    file_path: str
    file_size: int
    sha256: str


@dataclass(frozen=True)
class DeliveryView:
    id: int
    destination: str
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime
    first_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    study_instance_uid: str
    version: int
    sop_instance_uid: str
    sop_class_uid: str
    file_path: str


def complete_job_with_results(
    engine: Engine,
    job_id: int,
    worker_id: str,
    results: Sequence[StoredResult],
    destinations: Sequence[str],
    now: datetime,
) -> list[int]:
    """Mark the job done and record its results and their deliveries, atomically."""
    with Session(engine) as session, session.begin():
        job = session.get_one(Job, job_id)
        changed = rows_changed(
            session,
            update(Job)
            .where(*owned_job(job_id, worker_id))
            .values(state=JobState.DONE.value, finished_at=now, lease_expires_at=None),
        )
        if changed != 1:
            raise LeaseLost(f"job {job_id} is no longer held by {worker_id}")
        result_ids = []
        for result in results:
            result_id = session.execute(
                insert(ResultObject)
                .values(
                    job_fk=job_id,
                    study_instance_uid=job.study_instance_uid,
                    version=job.version,
                    sop_instance_uid=result.sop_instance_uid,
                    sop_class_uid=result.sop_class_uid,
                    file_path=result.file_path,
                    file_size=result.file_size,
                    sha256=result.sha256,
                    created_at=now,
                )
                .returning(ResultObject.id)
            ).scalar_one()
            result_ids.append(int(result_id))
            for destination in destinations:
                session.execute(
                    insert(Delivery).values(
                        result_fk=result_id,
                        destination=destination,
                        state=DeliveryState.PENDING.value,
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
        record_event(
            session,
            job_id,
            JobState.RUNNING,
            JobState.DONE,
            worker_id,
            now,
            f"completed with {len(results)} result(s) for {len(destinations)} destination(s)",
        )
        return result_ids


class Outbox:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def claim(self, worker_id: str, lease: timedelta, now: datetime) -> DeliveryView | None:
        due = and_(Delivery.state == DeliveryState.PENDING.value, Delivery.next_attempt_at <= now)
        candidates = (
            select(Delivery.id).where(due).order_by(Delivery.next_attempt_at, Delivery.id).limit(1)
        )

        def take(delivery_id: int) -> Update:
            return self._take(delivery_id, worker_id, lease, now)

        return claim_first(self.engine, candidates, take, self._view)

    def claim_study(
        self, worker_id: str, lease: timedelta, now: datetime, limit: int = STUDY_BATCH
    ) -> list[DeliveryView]:
        """The oldest due delivery and the other due deliveries of its study's version to the
        same destination, claimed together so they go over one association. Each row keeps
        its own attempts, back-off and state; rows in back-off or held elsewhere stay out."""
        due = and_(Delivery.state == DeliveryState.PENDING.value, Delivery.next_attempt_at <= now)
        candidates = (
            select(Delivery.id).where(due).order_by(Delivery.next_attempt_at, Delivery.id).limit(1)
        )

        def take(delivery_id: int) -> Update:
            return self._take(delivery_id, worker_id, lease, now)

        def with_siblings(session: Session, first_id: int) -> list[DeliveryView]:
            first = session.get_one(Delivery, first_id)
            result = session.get_one(ResultObject, first.result_fk)
            siblings = (
                select(Delivery.id)
                .join(ResultObject, Delivery.result_fk == ResultObject.id)
                .where(
                    due,
                    Delivery.id != first_id,
                    Delivery.destination == first.destination,
                    ResultObject.study_instance_uid == result.study_instance_uid,
                    ResultObject.version == result.version,
                )
                .order_by(Delivery.id)
                .limit(limit - 1)
            )
            if self.engine.dialect.name == "postgresql":
                siblings = siblings.with_for_update(skip_locked=True, of=Delivery)
            taken = [first_id]
            for sibling_id in session.execute(siblings).scalars().all():
                if rows_changed(session, take(int(sibling_id))) == 1:
                    taken.append(int(sibling_id))
            return [self._view(session, i) for i in sorted(taken)]

        return claim_first(self.engine, candidates, take, with_siblings) or []

    @staticmethod
    def _take(delivery_id: int, worker_id: str, lease: timedelta, now: datetime) -> Update:
        return (
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.state == DeliveryState.PENDING.value)
            .values(
                state=DeliveryState.SENDING.value,
                worker_id=worker_id,
                attempts=Delivery.attempts + 1,
                lease_expires_at=now + lease,
                first_attempt_at=func.coalesce(Delivery.first_attempt_at, now),
            )
        )

    def heartbeat_many(
        self, delivery_ids: Sequence[int], worker_id: str, lease: timedelta, now: datetime
    ) -> set[int]:
        """Extend the leases of the rows still held; returns their ids (the others were
        settled or lost)."""
        if not delivery_ids:
            return set()
        with Session(self.engine) as session, session.begin():
            held = session.execute(
                update(Delivery)
                .where(
                    Delivery.id.in_(list(delivery_ids)),
                    Delivery.state == DeliveryState.SENDING.value,
                    Delivery.worker_id == worker_id,
                )
                .values(lease_expires_at=now + lease)
                .returning(Delivery.id)
            )
            return {int(i) for i in held.scalars()}

    def heartbeat(self, delivery_id: int, worker_id: str, lease: timedelta, now: datetime) -> None:
        with Session(self.engine) as session, session.begin():
            changed = rows_changed(
                session,
                update(Delivery)
                .where(
                    Delivery.id == delivery_id,
                    Delivery.state == DeliveryState.SENDING.value,
                    Delivery.worker_id == worker_id,
                )
                .values(lease_expires_at=now + lease),
            )
        if changed != 1:
            raise LeaseLost(f"delivery {delivery_id} is no longer held by {worker_id}")

    def delivered(self, delivery_id: int, worker_id: str, status: int, now: datetime) -> None:
        self._settle(
            delivery_id,
            worker_id,
            state=DeliveryState.DELIVERED.value,
            last_status=status,
            delivered_at=now,
            lease_expires_at=None,
        )

    def failed(
        self,
        delivery_id: int,
        worker_id: str,
        status: int | None,
        error: str,
        retry_at: datetime | None,
    ) -> None:
        """Back to pending at ``retry_at``, or dead-lettered when it is None."""
        values: dict[str, object] = {
            "last_status": status,
            "last_error": error,
            "lease_expires_at": None,
            "worker_id": None,
        }
        if retry_at is None:
            values["state"] = DeliveryState.DEAD.value
        else:
            values |= {"state": DeliveryState.PENDING.value, "next_attempt_at": retry_at}
        self._settle(delivery_id, worker_id, **values)

    def _settle(self, delivery_id: int, holder: str, **values: object) -> None:
        with Session(self.engine) as session, session.begin():
            changed = rows_changed(
                session,
                update(Delivery)
                .where(
                    Delivery.id == delivery_id,
                    Delivery.state == DeliveryState.SENDING.value,
                    Delivery.worker_id == holder,
                )
                .values(**values),
            )
        if changed != 1:
            raise LeaseLost(f"delivery {delivery_id} is no longer held by {holder}")

    def recover_expired(self, now: datetime) -> int:
        """Deliveries whose sender died mid-send go back to pending."""
        with Session(self.engine) as session, session.begin():
            return rows_changed(
                session,
                update(Delivery)
                .where(
                    Delivery.state == DeliveryState.SENDING.value,
                    Delivery.lease_expires_at < now,
                )
                .values(
                    state=DeliveryState.PENDING.value,
                    worker_id=None,
                    lease_expires_at=None,
                    next_attempt_at=now,
                    last_error="sender lost mid-send",
                ),
            )

    def resend(self, now: datetime, ids: Sequence[int] | None = None) -> int:
        """Put dead-lettered rows (or the chosen ones, unless delivered) back in the queue,
        with a fresh retry window."""
        condition = (
            Delivery.id.in_(list(ids)) if ids else Delivery.state == DeliveryState.DEAD.value
        )
        with Session(self.engine) as session, session.begin():
            return rows_changed(
                session,
                update(Delivery)
                .where(
                    condition,
                    Delivery.state.in_([DeliveryState.DEAD.value, DeliveryState.PENDING.value]),
                )
                .values(
                    state=DeliveryState.PENDING.value,
                    next_attempt_at=now,
                    first_attempt_at=None,
                    attempts=0,
                ),
            )

    def deliveries(self, states: Sequence[DeliveryState] | None = None) -> list[DeliveryView]:
        query = select(Delivery.id).order_by(Delivery.id)
        if states:
            query = query.where(Delivery.state.in_([s.value for s in states]))
        with Session(self.engine) as session:
            return [self._view(session, i) for i in session.execute(query).scalars()]

    def results_of(self, study_instance_uid: str) -> list[tuple[str, str, int, str]]:
        """(SOP Instance UID, SOP Class UID, version, file path) of a study's results."""
        query = (
            select(
                ResultObject.sop_instance_uid,
                ResultObject.sop_class_uid,
                ResultObject.version,
                ResultObject.file_path,
            )
            .where(ResultObject.study_instance_uid == study_instance_uid)
            .order_by(ResultObject.version, ResultObject.id)
        )
        with Session(self.engine) as session:
            return [
                (uid, cls, int(version), path) for uid, cls, version, path in session.execute(query)
            ]

    def result_paths(self) -> set[str]:
        with Session(self.engine) as session:
            return set(session.execute(select(ResultObject.file_path)).scalars())

    @staticmethod
    def _view(session: Session, delivery_id: int) -> DeliveryView:
        delivery = session.get_one(Delivery, delivery_id)
        result = session.get_one(ResultObject, delivery.result_fk)
        return DeliveryView(
            id=delivery.id,
            destination=delivery.destination,
            state=DeliveryState(delivery.state),
            attempts=delivery.attempts,
            next_attempt_at=aware_required(delivery.next_attempt_at),
            first_attempt_at=aware(delivery.first_attempt_at),
            last_status=delivery.last_status,
            last_error=delivery.last_error,
            delivered_at=aware(delivery.delivered_at),
            study_instance_uid=result.study_instance_uid,
            version=result.version,
            sop_instance_uid=result.sop_instance_uid,
            sop_class_uid=result.sop_class_uid,
            file_path=result.file_path,
        )
