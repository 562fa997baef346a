"""Engine creation: the same code on SQLite (embedded default) and PostgreSQL.

SQLite runs in WAL mode with synchronous=FULL so a committed index row survives a power
cut, and every transaction starts with BEGIN IMMEDIATE so concurrent writers queue on the
busy timeout instead of failing on a lock upgrade.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    DisconnectionError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from storage.errors import StorageError
from storage.index import InstanceIndex
from storage.migrate import upgrade

SQLITE_BUSY_TIMEOUT_MS = 60_000


def open_engine(url: str) -> Engine:
    """An engine for ``url``; creates the SQLite file's folder when needed."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=16)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        pool_size=8,
        max_overflow=16,
    )
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_begin_immediate)
    return engine


def _sqlite_on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN instead of the driver's implicit one.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _sqlite_begin_immediate(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def open_index(url: str, migrate: bool = True) -> tuple[Engine, InstanceIndex]:
    """Open the index database and (unless the caller knows it is done) migrate it."""
    try:
        engine = open_engine(url)
        if migrate:
            upgrade(engine)
    except (SQLAlchemyError, OSError) as exc:
        raise StorageError(f"cannot open the index database: {type(exc).__name__}: {exc}") from exc
    return engine, InstanceIndex(engine)


def database_up(engine: Engine) -> bool:
    """Whether the database answers a trivial query now (for health checks)."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:  # any failure means "down" to a health check, never a crash
        return False
    return True


UNAVAILABLE = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)


def unavailable(error: BaseException) -> bool:
    """Whether ``error`` (or what it wraps) says the database cannot be reached or used now
    (refused, dropped, timed out, locked, out of space): a transient state to wait out, unlike
    a constraint or a programming error."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, UNAVAILABLE):
            return True
        seen = seen.__cause__
    return False
