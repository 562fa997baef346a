"""The audit trail store: append with a SHA-256 hash chain, verify, read for export/shipping.

Each record's hash covers its sequence number, time, event, outcome and message, and the
previous record's hash; so a changed, removed, inserted or reordered record breaks the chain
from that point. Appends are serialised (BEGIN IMMEDIATE on SQLite, a transaction-level
advisory lock on PostgreSQL) because every process of the node writes to the one chain.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, insert, select, text, update
from sqlalchemy.orm import Session

from storage.audit_tables import AuditRecord, AuditShipping
from storage.times import aware_required

GENESIS = "0" * 64
ADVISORY_LOCK_KEY = 0x42_4E_41_55  # "BNAU"


@dataclass(frozen=True)
class StoredAudit:
    id: int
    recorded_at: datetime
    event_id: str
    outcome: int
    message: str
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class ChainCheck:
    records: int
    problems: tuple[str, ...]

    @property
    def intact(self) -> bool:
        return not self.problems


def chain_hash(
    prev_hash: str, seq: int, recorded_at: datetime, event_id: str, outcome: int, message: str
) -> str:
    digest = hashlib.sha256()
    for part in (
        prev_hash,
        str(seq),
        aware_required(recorded_at).isoformat(),
        event_id,
        str(outcome),
        message,
    ):
        encoded = part.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return digest.hexdigest()


class AuditTrail:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def append(self, event_id: str, outcome: int, message: str, recorded_at: datetime) -> int:
        with Session(self.engine) as session, session.begin():
            if self.engine.dialect.name == "postgresql":
                session.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
                )
            last = session.execute(
                select(AuditRecord.id, AuditRecord.hash).order_by(AuditRecord.id.desc()).limit(1)
            ).first()
            seq = (last[0] + 1) if last else 1
            prev = last[1] if last else GENESIS
            digest = chain_hash(prev, seq, recorded_at, event_id, outcome, message)
            session.execute(
                insert(AuditRecord).values(
                    id=seq,
                    recorded_at=recorded_at,
                    event_id=event_id,
                    outcome=outcome,
                    message=message,
                    prev_hash=prev,
                    hash=digest,
                )
            )
            return seq

    def records(self, after_id: int = 0, limit: int | None = None) -> list[StoredAudit]:
        query = select(AuditRecord).where(AuditRecord.id > after_id).order_by(AuditRecord.id)
        if limit:
            query = query.limit(limit)
        with Session(self.engine) as session:
            return [
                StoredAudit(
                    r.id,
                    aware_required(r.recorded_at),
                    r.event_id,
                    r.outcome,
                    r.message,
                    r.prev_hash,
                    r.hash,
                )
                for r in session.execute(query).scalars()
            ]

    def verify(self) -> ChainCheck:
        problems: list[str] = []
        expected_prev, expected_seq, count = GENESIS, 1, 0
        for record in self.records():
            count += 1
            if record.id != expected_seq:
                problems.append(f"record {expected_seq} is missing (next is {record.id})")
            if record.prev_hash != expected_prev:
                problems.append(
                    f"record {record.id} does not follow its predecessor "
                    "(removed, inserted or reordered)"
                )
            recomputed = chain_hash(
                record.prev_hash,
                record.id,
                record.recorded_at,
                record.event_id,
                record.outcome,
                record.message,
            )
            if recomputed != record.hash:
                problems.append(f"record {record.id} was changed after it was written")
            expected_prev, expected_seq = record.hash, record.id + 1
        return ChainCheck(count, tuple(problems))

    def shipped_through(self) -> int:
        with Session(self.engine) as session:
            value = session.execute(select(func.max(AuditShipping.last_shipped_id))).scalar()
            return int(value or 0)

    def mark_shipped(self, through_id: int) -> None:
        with Session(self.engine) as session, session.begin():
            changed = session.execute(
                update(AuditShipping)
                .where(AuditShipping.id == 1)
                .values(last_shipped_id=through_id)
            )
            if getattr(changed, "rowcount", 0) != 1:
                session.execute(insert(AuditShipping).values(id=1, last_shipped_id=through_id))
