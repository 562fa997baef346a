"""The index on SQLite and PostgreSQL: schema, writes, duplicates, concurrency, listings."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from storage.db import open_engine
from storage.errors import DuplicateInstanceError
from storage.index import InstanceIndex
from storage.migrate import upgrade
from storage.records import (
    InstanceRecord,
    PatientRecord,
    ReceivedInstance,
    Reception,
    SeriesRecord,
    StoredFile,
    StudyRecord,
)
from storage.schema import metadata
from storage.tables import Instance, Patient, Series, Study

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def received(
    sop: str, study: str = "1.2.3.1", series: str = "1.2.3.1.1", seconds: int = 0
) -> ReceivedInstance:
    return ReceivedInstance(
        patient=PatientRecord(patient_id="SYN-INDEX", patient_name="SYNTHETIC^INDEX"),
        study=StudyRecord(study_instance_uid=study),
        series=SeriesRecord(series_instance_uid=series, modality="MG"),
        instance=InstanceRecord(
            sop_instance_uid=sop,
            sop_class_uid="1.2.840.10008.5.1.4.1.1.1.2",
            transfer_syntax_uid="1.2.840.10008.1.2.1",
            image_laterality="L",
            view_position="CC",
        ),
        file=StoredFile(f"objects/20260101/{sop.replace('.', '')}.dcm", 10, "0" * 64),
        reception=Reception("STORESCU", "127.0.0.1", T0 + timedelta(seconds=seconds)),
    )


def test_migrations_match_the_table_definitions(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []
    upgrade(engine)  # a second upgrade is a no-op


def test_sqlite_is_durable_wal(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'sub' / 'index.sqlite3'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    engine.dispose()


def test_add_and_list(engine: Engine) -> None:
    index = InstanceIndex(engine)
    index.add(received("1.2.3.1.1.1", seconds=0))
    index.add(received("1.2.3.1.1.2", seconds=5))
    index.add(received("1.2.3.2.1.1", study="1.2.3.2", series="1.2.3.2.1", seconds=9))
    studies = index.studies()
    assert [(s.study_instance_uid, s.instance_count) for s in studies] == [
        ("1.2.3.1", 2),
        ("1.2.3.2", 1),
    ]
    assert studies[0].first_received_at == T0
    assert studies[0].last_received_at == T0 + timedelta(seconds=5)
    assert studies[0].modalities == ("MG",)
    listed = index.instances("1.2.3.1")
    assert {i.sop_instance_uid for i in listed} == {"1.2.3.1.1.1", "1.2.3.1.1.2"}
    assert index.instances("9.9.9") == []
    with Session(engine) as session:
        assert session.scalar(select(func.count(Patient.id))) == 1


def test_duplicate_sop_instance_is_refused_and_first_kept(engine: Engine) -> None:
    index = InstanceIndex(engine)
    index.add(received("1.2.3.1.1.1"))
    with pytest.raises(DuplicateInstanceError):
        index.add(received("1.2.3.1.1.1", seconds=60))
    with Session(engine) as session:
        rows = session.execute(select(Instance.received_at)).scalars().all()
    assert len(rows) == 1


def test_parallel_writers_share_patient_study_and_series(engine: Engine) -> None:
    index = InstanceIndex(engine)
    uids = [f"1.2.3.1.1.{n}" for n in range(1, 41)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda uid: index.add(received(uid)), uids))
    with Session(engine) as session:
        assert session.scalar(select(func.count(Instance.id))) == 40
        assert session.scalar(select(func.count(Series.id))) == 1
        assert session.scalar(select(func.count(Study.id))) == 1
        assert session.scalar(select(func.count(Patient.id))) == 1


def test_concurrent_duplicates_leave_exactly_one_row(engine: Engine) -> None:
    index = InstanceIndex(engine)

    def attempt(_: int) -> str:
        try:
            index.add(received("1.2.3.1.1.7"))
        except DuplicateInstanceError:
            return "duplicate"
        return "stored"

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(attempt, range(6)))
    assert outcomes.count("stored") == 1
    assert outcomes.count("duplicate") == 5
