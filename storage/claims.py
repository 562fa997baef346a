"""Claiming one row of a work table atomically, the same way for jobs and deliveries.

The oldest due row is picked (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent
claimers never wait on each other), then taken with a conditional UPDATE whose rowcount says
whether this claimer won; on SQLite a lost race simply tries the next candidate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from sqlalchemy import Engine, Select, Update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

T = TypeVar("T")
SelectT = TypeVar("SelectT", bound="Select[*tuple[Any, ...]]")
RACE_RETRIES = 20


def rows_changed(session: Session, statement: Executable) -> int:
    """Rows an UPDATE changed: how a conditional UPDATE tells who won."""
    result = cast("CursorResult[Any]", session.execute(statement))
    return int(result.rowcount)


def skip_locked(engine: Engine, candidates: SelectT, of: Any = None) -> SelectT:
    """On PostgreSQL, ``candidates`` locked as read and rows another transaction holds
    skipped, so claimers never queue behind each other; SQLite serialises writers itself."""
    if engine.dialect.name != "postgresql":
        return candidates
    return candidates.with_for_update(skip_locked=True, of=of)


def claim_first(
    engine: Engine,
    candidates: Select[Any],
    take: Callable[[int], Update],
    on_won: Callable[[Session, int], T],
) -> T | None:
    """``on_won(session, id)`` for the row this call took, in the claiming transaction."""
    candidates = skip_locked(engine, candidates)
    for _ in range(RACE_RETRIES):
        with Session(engine) as session, session.begin():
            row_id = session.execute(candidates).scalar()
            if row_id is None:
                return None
            if rows_changed(session, take(int(row_id))) == 1:
                return on_won(session, int(row_id))
    return None
