"""The completion sweep over a real index and queue, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, select

from node.pipeline.completion import sweep
from storage.db import open_engine
from storage.index import InstanceIndex
from storage.migrate import upgrade
from storage.queue import JobQueue
from storage.records import (
    PatientRecord,
)
from storage.tables import PENDING, Study
from tests.support.records import MG, MR, received_instance

T0 = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
QUIET = timedelta(seconds=30)


def receive(
    index: InstanceIndex,
    study: str,
    n: int,
    at: datetime,
    lat: str = "L",
    view: str = "CC",
    sop_class: str = MG,
) -> None:
    index.add(
        received_instance(
            f"{study}.{n}",
            study,
            received_at=at,
            series=f"{study}.0",
            sop_class=sop_class,
            laterality=lat,
            view=view,
            patient=PatientRecord(patient_id="SYN-SWEEP"),
        )
    )


def test_four_views_open_version_one_at_once_and_only_once(engine: Engine) -> None:
    index, queue = InstanceIndex(engine), JobQueue(engine)
    for n, (lat, view) in enumerate([("R", "CC"), ("L", "CC"), ("R", "MLO")]):
        receive(index, "1.9.1", n, T0, lat, view)
    assert sweep(engine, T0 + timedelta(seconds=1), QUIET) == []
    receive(index, "1.9.1", 3, T0 + timedelta(seconds=2), "L", "MLO")
    opened = sweep(engine, T0 + timedelta(seconds=2), QUIET)
    assert len(opened) == 1
    assert sweep(engine, T0 + timedelta(seconds=60), QUIET) == []  # nothing new arrived
    [job] = queue.jobs()
    assert (job.study_instance_uid, job.version, job.kind) == ("1.9.1", 1, "analysis")


def test_mri_waits_for_quiet_and_late_instance_reopens(engine: Engine) -> None:
    index, queue = InstanceIndex(engine), JobQueue(engine)
    receive(index, "1.9.2", 0, T0, sop_class=MR)
    receive(index, "1.9.2", 1, T0 + timedelta(seconds=10), sop_class=MR)
    assert sweep(engine, T0 + timedelta(seconds=39), QUIET) == []
    assert len(sweep(engine, T0 + timedelta(seconds=40), QUIET)) == 1
    receive(index, "1.9.2", 2, T0 + timedelta(minutes=5), sop_class=MR)
    assert sweep(engine, T0 + timedelta(minutes=5, seconds=10), QUIET) == []
    assert len(sweep(engine, T0 + timedelta(minutes=5, seconds=30), QUIET)) == 1
    assert [(j.version, j.study_instance_uid) for j in queue.jobs()] == [(1, "1.9.2"), (2, "1.9.2")]


def test_concurrent_sweeps_open_each_version_once(engine: Engine) -> None:
    index = InstanceIndex(engine)
    for study in range(8):
        receive(index, f"1.9.3.{study}", 0, T0, sop_class=MR)
    results: list[list[int]] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(sweep(engine, T0 + timedelta(minutes=1), QUIET))
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    opened = [job for result in results for job in result]
    assert len(opened) == len(set(opened)) == 8
    assert len(JobQueue(engine).jobs()) == 8


def test_an_instance_committed_late_with_an_earlier_reception_time_reopens(
    engine: Engine,
) -> None:
    """Two receivers: one takes its reception time, the other stores a later view and the
    sweep opens version 1 before the first commits. Its instance is newer than the version,
    though its time is older: the study is pending again, and analysed after the quiet."""
    index = InstanceIndex(engine)
    for n, (lat, view) in enumerate([("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO")]):
        receive(index, "1.9.4", n, T0 + timedelta(seconds=2), lat, view)
    assert len(sweep(engine, T0 + timedelta(seconds=2), QUIET)) == 1
    receive(index, "1.9.4", 4, T0 + timedelta(seconds=1), "L", "CC")  # committed late
    assert sweep(engine, T0 + timedelta(seconds=20), QUIET) == []  # not quiet yet
    assert len(sweep(engine, T0 + timedelta(seconds=32), QUIET)) == 1
    assert sweep(engine, T0 + timedelta(minutes=5), QUIET) == []
    assert [j.version for j in JobQueue(engine).jobs()] == [1, 2]


def test_the_sweep_reads_only_the_pending_studies_through_their_index(tmp_path: Path) -> None:
    """The sweep's cost must not grow with what the node received over the years (SQLite's
    plan is fixed; PostgreSQL's depends on table statistics, see bench/sweep.py)."""
    engine = open_engine(f"sqlite:///{tmp_path / 'index.sqlite3'}")
    upgrade(engine)
    with engine.connect() as connection:
        compiled = select(Study.id).where(PENDING).compile(engine)
        plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").all()
    engine.dispose()
    details = " ".join(str(row[-1]) for row in plan)
    assert "ix_studies_pending" in details, details
