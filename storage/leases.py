"""One lease mechanism for every work queue: analysis jobs and deliveries alike.

A worker takes the oldest due waiting row with a conditional UPDATE (see
:mod:`storage.claims`), holds it
under a lease that its heartbeats extend, and settles it (done, back to waiting for a retry,
or dead) with an UPDATE conditional on still holding it. A row whose lease ran out goes back
to waiting. Every state change writes an events row in the same transaction, so a row's
history is complete whichever queue it belongs to.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Engine,
    Integer,
    String,
    Text,
    Update,
    and_,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import InstrumentedAttribute, Mapped, Session, mapped_column

from storage.claims import claim_first, rows_changed, skip_locked
from storage.errors import StorageError

T = TypeVar("T")


class LeaseLost(StorageError):
    """The row is no longer this worker's (its lease expired and it went back to waiting)."""


class TransitionColumns:
    """The columns of an events table (one row per state change); the table adds the
    foreign key naming its work row."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    worker_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)


Transition = tuple[str | None, str, str | None]  # (from, to, detail)


@dataclass(frozen=True)
class LeasedTable:
    """A work table's lease columns and its events table.

    ``rows`` has ``id``, ``state``, ``worker_id``, ``attempts``, ``first_attempt_at``,
    ``lease_expires_at``, ``heartbeat_at`` and ``last_error``; ``due_at`` names its column
    saying when a waiting row may be taken, ``fk`` the events table's column naming a row.
    """

    rows: type[Any]
    events: type[Any]
    noun: str  # "job", "delivery": for messages
    waiting: str  # the state of rows waiting for a worker
    held: str  # the state of rows a worker holds
    dead: str  # the state of rows given up on (dead-lettered)
    due_at: str
    fk: str

    def column(self, name: str) -> InstrumentedAttribute[Any]:
        column: InstrumentedAttribute[Any] = getattr(self.rows, name)
        return column

    def held_by(self, row_id: int, worker_id: str) -> tuple[ColumnElement[bool], ...]:
        rows = self.rows
        return (rows.id == row_id, rows.state == self.held, rows.worker_id == worker_id)

    def due(self, now: datetime) -> ColumnElement[bool]:
        """Waiting rows that may be taken at ``now``."""
        rows = self.rows
        due: ColumnElement[bool] = and_(rows.state == self.waiting, self.column(self.due_at) <= now)
        return due

    def claim(
        self,
        engine: Engine,
        worker_id: str,
        lease: timedelta,
        now: datetime,
        due: ColumnElement[bool],
        then: Callable[[Session, int], T],
    ) -> T | None:
        """Take the oldest row matching ``due`` (see :meth:`due`), record the claim, and
        return ``then(session, id)`` from the claiming transaction; None when none is due."""
        rows = self.rows
        oldest = select(rows.id).where(due).order_by(self.column(self.due_at), rows.id).limit(1)

        def take(row_id: int) -> Update:
            return self.take(row_id, worker_id, lease, now)

        def won(session: Session, row_id: int) -> T:
            self.claimed(session, row_id, worker_id, now)
            return then(session, row_id)

        return claim_first(engine, oldest, take, won)

    def take(self, row_id: int, worker_id: str, lease: timedelta, now: datetime) -> Update:
        """The claim's conditional UPDATE: its rowcount says whether this worker won."""
        rows = self.rows
        return (
            update(rows)
            .where(rows.id == row_id, rows.state == self.waiting)
            .values(
                state=self.held,
                worker_id=worker_id,
                attempts=rows.attempts + 1,
                lease_expires_at=now + lease,
                heartbeat_at=now,
                first_attempt_at=func.coalesce(rows.first_attempt_at, now),
            )
        )

    def claimed(self, session: Session, row_id: int, worker_id: str, now: datetime) -> None:
        self.record(session, row_id, self.waiting, self.held, worker_id, now, "claimed")

    def record(
        self,
        session: Session,
        row_id: int,
        from_state: str | None,
        to_state: str,
        worker_id: str | None,
        now: datetime,
        detail: str,
    ) -> None:
        """The events row of one state change, in the caller's transaction."""
        session.execute(
            insert(self.events).values(
                {
                    self.fk: row_id,
                    "at": now,
                    "from_state": from_state,
                    "to_state": to_state,
                    "worker_id": worker_id,
                    "detail": detail,
                }
            )
        )

    def settle(
        self,
        bind: Session | Engine,
        row_id: int,
        worker_id: str,
        to_state: str,
        now: datetime,
        detail: str,
        **values: object,
    ) -> None:
        """End the holding of a row: done, dead, or back to waiting (it then has no worker),
        in the caller's transaction (a session) or in one of its own (an engine). Raises
        :class:`LeaseLost` when the row is no longer this worker's."""
        if isinstance(bind, Engine):
            with Session(bind) as session, session.begin():
                self.settle(session, row_id, worker_id, to_state, now, detail, **values)
            return
        values["state"] = to_state
        values["lease_expires_at"] = None
        if to_state == self.waiting:
            values["worker_id"] = None
        changed = rows_changed(
            bind, update(self.rows).where(*self.held_by(row_id, worker_id)).values(**values)
        )
        if changed != 1:
            raise LeaseLost(f"{self.noun} {row_id} is no longer held by {worker_id}")
        self.record(bind, row_id, self.held, to_state, worker_id, now, detail)

    def heartbeat(
        self,
        engine: Engine,
        row_ids: Sequence[int],
        worker_id: str,
        lease: timedelta,
        now: datetime,
    ) -> set[int]:
        """Extend the leases of the rows still held; returns their ids (the others were
        settled or lost)."""
        if not row_ids:
            return set()
        rows = self.rows
        with Session(engine) as session, session.begin():
            held = session.execute(
                update(rows)
                .where(
                    rows.id.in_(list(row_ids)),
                    rows.state == self.held,
                    rows.worker_id == worker_id,
                )
                .values(heartbeat_at=now, lease_expires_at=now + lease)
                .returning(rows.id)
            )
            return {int(i) for i in held.scalars()}

    def recover_expired(self, engine: Engine, now: datetime, error: str) -> list[int]:
        """Put held rows whose lease ran out (their worker died) back to waiting, due now;
        returns their ids."""
        rows = self.rows
        expired_now = (rows.state == self.held, rows.lease_expires_at < now)
        with Session(engine) as session, session.begin():
            expired = select(rows.id, rows.worker_id).where(*expired_now).order_by(rows.id)
            expired = skip_locked(engine, expired)
            recovered = []
            for row_id, worker_id in session.execute(expired).all():
                changed = rows_changed(
                    session,
                    update(rows)
                    .where(rows.id == row_id, *expired_now)
                    .values(
                        {
                            "state": self.waiting,
                            "worker_id": None,
                            "lease_expires_at": None,
                            self.due_at: now,
                            "last_error": error,
                        }
                    ),
                )
                if changed == 1:
                    self.record(
                        session, row_id, self.held, self.waiting, worker_id, now, "lease expired"
                    )
                    recovered.append(int(row_id))
            return recovered

    def requeue(
        self,
        engine: Engine,
        now: datetime,
        ids: Sequence[int] | None,
        detail: str,
        **values: object,
    ) -> int:
        """Put dead rows (or the chosen ones, when dead or waiting; never one held or done)
        back to waiting, due now and with a fresh retry window (no attempts yet); ``values``
        resets the table's own columns. Returns how many rows were put back."""
        rows = self.rows
        chosen = rows.id.in_(list(ids)) if ids else rows.state == self.dead
        candidates = (
            select(rows.id, rows.state)
            .where(chosen, rows.state.in_([self.dead, self.waiting]))
            .order_by(rows.id)
        )
        values |= {"state": self.waiting, self.due_at: now, "first_attempt_at": None}
        requeued = 0
        with Session(engine) as session, session.begin():
            for row_id, state in session.execute(skip_locked(engine, candidates)).all():
                again = update(rows).where(rows.id == row_id, rows.state == state)
                if rows_changed(session, again.values(attempts=0, **values)) == 1:
                    self.record(session, int(row_id), state, self.waiting, None, now, detail)
                    requeued += 1
        return requeued

    def transitions(self, engine: Engine, row_id: int) -> list[Transition]:
        """(from, to, detail) of every state change of a row, oldest first."""
        events = self.events
        query = (
            select(events.from_state, events.to_state, events.detail)
            .where(getattr(events, self.fk) == row_id)
            .order_by(events.id)
        )
        with Session(engine) as session:
            return [(f, t, d) for f, t, d in session.execute(query).all()]
