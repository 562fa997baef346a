"""The index on SQLite and PostgreSQL: schema, writes, duplicates, concurrency, listings."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import DateTime, Engine, column, func, insert, select, table, text
from sqlalchemy.orm import Session

from storage.db import open_engine
from storage.errors import DuplicateInstanceError
from storage.index import InstanceIndex
from storage.migrate import upgrade
from storage.pending_studies import pending_studies
from storage.records import (
    PatientRecord,
    ReceivedInstance,
    StoredFile,
)
from storage.schema import metadata
from storage.tables import Instance, Patient, Series, Study
from storage.times import aware_required
from tests.support.records import received_instance

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def received(
    sop: str, study: str = "1.2.3.1", series: str = "1.2.3.1.1", seconds: int = 0
) -> ReceivedInstance:
    return received_instance(
        sop,
        study,
        received_at=T0 + timedelta(seconds=seconds),
        series=series,
        laterality="L",
        view="CC",
        patient=PatientRecord(patient_id="SYN-INDEX", patient_name="SYNTHETIC^INDEX"),
        file=StoredFile(f"objects/20260101/{sop.replace('.', '')}.dcm", 10, "0" * 64),
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
        list(pool.map(lambda n: index.add(received(uids[n], seconds=n)), range(len(uids))))
    with Session(engine) as session:
        assert session.scalar(select(func.count(Instance.id))) == 40
        # the study's count and newest reception, kept by every writer, lose nothing
        [(count, last)] = session.execute(select(Study.received_count, Study.last_received_at))
        assert count == 40
        assert aware_required(last) == T0 + timedelta(seconds=39)
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


def test_the_upgrade_counts_what_was_indexed_and_keeps_what_was_pending(
    database_url: str,
) -> None:
    """An index made before studies counted their instances: after the upgrade exactly the
    studies that were pending (an instance newer than the latest version) still are."""
    engine = open_engine(database_url)
    upgrade(engine, "0005")
    moment = DateTime(timezone=True)
    patients = table("patients", column("id"), column("patient_id"), column("issuer"))
    studies = table(
        "studies",
        column("id"),
        column("study_instance_uid"),
        column("patient_fk"),
        column("created_at", moment),
        column("analysed_version"),
        column("analysed_through", moment),
    )
    series = table("series", column("id"), column("series_instance_uid"), column("study_fk"))
    instances = table(
        "instances",
        *(column(name) for name in ("sop_instance_uid", "sop_class_uid", "series_fk")),
        *(column(name) for name in ("transfer_syntax_uid", "file_path", "file_size", "sha256")),
        column("calling_ae"),
        column("peer_address"),
        column("received_at", moment),
    )
    at = [T0 + timedelta(seconds=s) for s in range(6)]
    # study: (version, analysed through, receptions)
    made = {
        "1.5.1": (1, at[1], at[:2]),
        "1.5.2": (1, at[1], at[:2] + at[5:]),
        "1.5.3": (0, None, at[3:4]),
    }
    with engine.begin() as connection:
        connection.execute(insert(patients).values(id=1, patient_id="SYN", issuer=""))
        for number, (uid, (version, through, receptions)) in enumerate(made.items(), start=1):
            connection.execute(
                insert(studies).values(
                    id=number,
                    study_instance_uid=uid,
                    patient_fk=1,
                    created_at=T0,
                    analysed_version=version,
                    analysed_through=through,
                )
            )
            connection.execute(
                insert(series).values(id=number, series_instance_uid=f"{uid}.1", study_fk=number)
            )
            for k, moment_received in enumerate(receptions):
                connection.execute(
                    insert(instances).values(
                        sop_instance_uid=f"{uid}.1.{k}",
                        sop_class_uid="1.2.840.10008.5.1.4.1.1.4",
                        series_fk=number,
                        transfer_syntax_uid="1.2.840.10008.1.2.1",
                        file_path=f"objects/20260101/{uid}-{k}.dcm",
                        file_size=1,
                        sha256="0" * 64,
                        calling_ae="SCU",
                        peer_address="127.0.0.1",
                        received_at=moment_received,
                    )
                )
    upgrade(engine)
    with Session(engine) as session:
        rows = session.execute(
            select(
                Study.study_instance_uid,
                Study.received_count,
                Study.analysed_count,
                Study.last_received_at,
            ).order_by(Study.id)
        ).all()
    assert [(uid, count, covered) for uid, count, covered, _ in rows] == [
        ("1.5.1", 2, 2),
        ("1.5.2", 3, 2),
        ("1.5.3", 1, 0),
    ]
    assert [aware_required(last) for *_, last in rows] == [at[1], at[5], at[3]]
    pending = {p.study_instance_uid: p.received_count for p in pending_studies(engine)}
    assert pending == {"1.5.2": 3, "1.5.3": 1}
    engine.dispose()


def test_an_instance_counts_for_the_study_its_series_belongs_to(engine: Engine) -> None:
    """A series UID reused under another study's header: the instance joins the series
    already indexed, and so does its count; the other study has nothing pending."""
    index = InstanceIndex(engine)
    index.add(received("1.2.3.1.1.1", study="1.2.3.1", series="1.2.3.1.1"))
    index.add(received("1.2.3.1.1.2", study="1.2.3.9", series="1.2.3.1.1", seconds=5))
    with Session(engine) as session:
        found = session.execute(select(Study.study_instance_uid, Study.received_count))
        counts = {uid: count for uid, count in found}
    assert counts == {"1.2.3.1": 2, "1.2.3.9": 0}
    assert {p.study_instance_uid for p in pending_studies(engine)} == {"1.2.3.1"}


def test_the_pending_index_is_partial_on_both_databases(engine: Engine) -> None:
    """compare_metadata does not compare an index's condition: read it back."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            query = "SELECT sql FROM sqlite_master WHERE name = 'ix_studies_pending'"
        else:
            query = "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_studies_pending'"
        [definition] = connection.exec_driver_sql(query).scalars().all()
    condition = definition.split("WHERE", 1)[1].replace("(", "").replace(")", "").strip()
    assert condition == "received_count > analysed_count", definition
