"""Completion sweep benchmark: how long one sweep takes as the index grows.

The scheduler sweeps every ``[pipeline] sweep_interval_seconds`` (1 s by default) for studies
with instances their latest analysis version does not cover. Fills an index (SQLite in a
temporary folder, and PostgreSQL at 127.0.0.1:5432 when it answers) with analysed studies of
``--per-study`` instances each plus ``--pending`` studies still waiting, then times
``pending_studies`` (the sweep's read; median of 5) and prints the database's plan for it.
Figures are printed, never asserted.

    python bench/sweep.py [--studies 50000] [--per-study 40] [--pending 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage.db import open_engine
from storage.migrate import upgrade
from storage.pending_studies import pending_studies
from storage.tables import PENDING, Instance, Patient, Series, Study

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
MG = "1.2.840.10008.5.1.4.1.1.1.2"


def fill(engine: Engine, studies: int, per_study: int, pending: int) -> None:
    """``studies`` analysed studies, the last ``pending`` of them with one instance more."""
    with engine.begin() as connection:
        connection.execute(insert(Patient), [{"id": 1, "patient_id": "SYN-BENCH", "issuer": ""}])
        rows = []
        for n in range(studies):
            waiting = n >= studies - pending
            last = T0 + timedelta(minutes=n)
            rows.append(
                {
                    "id": n + 1,
                    "study_instance_uid": f"1.2.826.0.1.3680043.10.1078.9.{n}",
                    "patient_fk": 1,
                    "created_at": last,
                    "received_count": per_study + int(waiting),
                    "last_received_at": last,
                    "analysed_version": 1,
                    "analysed_count": per_study,
                    "analysed_through": last,
                }
            )
        connection.execute(insert(Study), rows)
        connection.execute(
            insert(Series),
            [
                {"id": n + 1, "series_instance_uid": f"1.2.826.0.1.3680043.10.1078.8.{n}",
                 "study_fk": n + 1, "modality": "MG"}
                for n in range(studies)
            ],
        )  # fmt: skip
        batch: list[dict[str, object]] = []
        for n in range(studies):
            extra = int(n >= studies - pending)
            for k in range(per_study + extra):
                batch.append(
                    {
                        "sop_instance_uid": f"1.2.826.0.1.3680043.10.1078.7.{n}.{k}",
                        "sop_class_uid": MG,
                        "series_fk": n + 1,
                        "transfer_syntax_uid": "1.2.840.10008.1.2.1",
                        "file_path": f"objects/20260101/{n}-{k}",
                        "file_size": 1,
                        "sha256": "0" * 64,
                        "calling_ae": "SCU",
                        "peer_address": "127.0.0.1",
                        "received_at": T0 + timedelta(minutes=n),
                    }
                )
            if len(batch) >= 50_000:
                connection.execute(insert(Instance), batch)
                batch = []
        if batch:
            connection.execute(insert(Instance), batch)


def plan(engine: Engine) -> str:
    query = str(select(Study.id).where(PENDING).compile(engine))
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            rows = connection.exec_driver_sql(f"EXPLAIN {query}").all()
        else:
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}").all()
    return "; ".join(str(row[-1]).strip() for row in rows)


def measure(name: str, url: str, args: argparse.Namespace) -> None:
    engine = open_engine(url)
    try:
        upgrade(engine)
        started = time.perf_counter()
        fill(engine, args.studies, args.per_study, args.pending)
        if engine.dialect.name == "postgresql":  # as autovacuum would after such a load
            with engine.begin() as connection:
                connection.exec_driver_sql("ANALYZE")
        filled = time.perf_counter() - started
        times = []
        for _ in range(5):
            started = time.perf_counter()
            found = pending_studies(engine)
            times.append(time.perf_counter() - started)
        instances = args.studies * args.per_study + args.pending
        print(
            f"{name:<10} {args.studies} studies, {instances} instances (filled in {filled:.0f} s):"
            f" sweep read {statistics.median(times) * 1000:.1f} ms median of 5,"
            f" {len(found)} pending found"
        )
        print(f"{'':<10} plan: {plan(engine)}")
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--studies", type=int, default=50_000)
    parser.add_argument("--per-study", type=int, default=40)
    parser.add_argument("--pending", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="breastnode-sweep-") as folder:
        measure("SQLite", f"sqlite:///{Path(folder) / 'index.sqlite3'}", args)
    try:
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=3) as admin:
            name = f"breastnode_bench_{uuid.uuid4().hex[:12]}"
            admin.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        print(f"PostgreSQL left out: not reachable at 127.0.0.1:5432 ({type(exc).__name__})")
        return
    try:
        measure("PostgreSQL", f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", args)
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
