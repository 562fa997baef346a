"""Result objects and the delivery outbox.

A job's results and their outbox rows are committed in the same transaction that marks the
job done, so a crash either loses the whole (unacknowledged) analysis, which then runs again,
or keeps all of it; never results without deliveries or deliveries of a job that re-runs.
Deliveries are claimed like jobs (conditional UPDATE, SKIP LOCKED on PostgreSQL), a study
version's due rows for one destination together (one association), and a row that reached
``delivered`` is never sent again. Deliveries are leased and settled through
:mod:`storage.leases`, the jobs' own mechanism, so every change of state leaves an events row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from storage.claims import rows_changed, skip_locked
from storage.leases import LeasedTable, Transition
from storage.outbox_tables import Delivery, DeliveryEvent, ResultObject
from storage.queue import complete_in
from storage.queue_tables import Job
from storage.times import aware, aware_required, utcnow

# The most rows one association carries: a study's results are a handful of objects; this
# bounds a batch's presentation contexts (a few per SOP class, 128 at most) and its lease.
STUDY_BATCH = 32


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    DEAD = "dead"


DELIVERIES = LeasedTable(
    rows=Delivery,
    events=DeliveryEvent,
    noun="delivery",
    waiting=DeliveryState.PENDING.value,
    held=DeliveryState.SENDING.value,
    dead=DeliveryState.DEAD.value,
    due_at="next_attempt_at",
    fk="delivery_fk",
)


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
    """Mark the job done and record its results and their deliveries, atomically (through
    the queue's one way of finishing a job, which records its event)."""
    with Session(engine) as session, session.begin():
        detail = f"completed with {len(results)} result(s) for {len(destinations)} destination(s)"
        complete_in(session, job_id, worker_id, now, detail)
        job = session.get_one(Job, job_id)
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
                delivery_id = session.execute(
                    insert(Delivery)
                    .values(
                        result_fk=result_id,
                        destination=destination,
                        state=DeliveryState.PENDING.value,
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                    )
                    .returning(Delivery.id)
                ).scalar_one()
                DELIVERIES.record(
                    session,
                    int(delivery_id),
                    None,
                    DeliveryState.PENDING.value,
                    None,
                    now,
                    "queued",
                )
        return result_ids


class Outbox:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def claim(self, worker_id: str, lease: timedelta, now: datetime) -> DeliveryView | None:
        due = DELIVERIES.due(now)
        return DELIVERIES.claim(self.engine, worker_id, lease, now, due, self._view)

    def claim_study(
        self, worker_id: str, lease: timedelta, now: datetime, limit: int = STUDY_BATCH
    ) -> list[DeliveryView]:
        """The oldest due delivery and the other due deliveries of its study's version to the
        same destination, claimed together so they go over one association. Each row keeps
        its own attempts, back-off and state; rows in back-off or held elsewhere stay out."""
        due = DELIVERIES.due(now)

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
            siblings = skip_locked(self.engine, siblings, of=Delivery)
            taken = [first_id]
            for sibling_id in session.execute(siblings).scalars().all():
                if rows_changed(session, DELIVERIES.take(sibling_id, worker_id, lease, now)) == 1:
                    DELIVERIES.claimed(session, sibling_id, worker_id, now)
                    taken.append(int(sibling_id))
            return [self._view(session, i) for i in sorted(taken)]

        return DELIVERIES.claim(self.engine, worker_id, lease, now, due, with_siblings) or []

    def heartbeat_many(
        self, delivery_ids: Sequence[int], worker_id: str, lease: timedelta, now: datetime
    ) -> set[int]:
        """Extend the leases of the rows still held; returns their ids (the others were
        settled or lost)."""
        return DELIVERIES.heartbeat(self.engine, delivery_ids, worker_id, lease, now)

    def delivered(self, delivery_id: int, worker_id: str, status: int, now: datetime) -> None:
        DELIVERIES.settle(
            self.engine,
            delivery_id,
            worker_id,
            DeliveryState.DELIVERED.value,
            now,
            f"delivered (status 0x{status:04X})",
            last_status=status,
            delivered_at=now,
        )

    def failed(
        self,
        delivery_id: int,
        worker_id: str,
        status: int | None,
        error: str,
        retry_at: datetime | None,
        now: datetime | None = None,
    ) -> None:
        """Back to pending at ``retry_at``, or dead-lettered when it is None."""
        now = now or utcnow()
        values: dict[str, object] = {"last_status": status, "last_error": error}
        if retry_at is None:
            state, detail = DeliveryState.DEAD.value, f"dead: {error}"
        else:
            state, detail = DeliveryState.PENDING.value, f"retry at {retry_at.isoformat()}: {error}"
            values["next_attempt_at"] = retry_at
        DELIVERIES.settle(self.engine, delivery_id, worker_id, state, now, detail, **values)

    def recover_expired(self, now: datetime) -> int:
        """Deliveries whose sender died mid-send go back to pending."""
        return len(DELIVERIES.recover_expired(self.engine, now, "sender lost mid-send"))

    def resend(self, now: datetime, ids: Sequence[int] | None = None) -> int:
        """Put dead-lettered rows (or the chosen ones, unless delivered or being sent) back in
        the queue, with a fresh retry window."""
        return DELIVERIES.requeue(self.engine, now, ids, "resent")

    def events(self, delivery_id: int) -> list[Transition]:
        """(from, to, detail) of every transition of a delivery, oldest first."""
        return DELIVERIES.transitions(self.engine, delivery_id)

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
