"""The index of received instances: race-safe writes and the listings the CLI shows.

Patient, study and series rows are created with INSERT ... ON CONFLICT DO NOTHING, so
parallel associations delivering one study never trip over each other; the instance row's
unique SOP Instance UID is what makes a concurrent duplicate detectable. The study's
instance count and newest reception change in the same transaction as the instance row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from storage.errors import DuplicateInstanceError, StorageError
from storage.records import (
    InstanceSummary,
    ReceivedInstance,
    StudySummary,
)
from storage.tables import Base, Instance, Patient, Series, Study
from storage.times import aware, aware_required


class InstanceIndex:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def contains(self, sop_instance_uid: str) -> bool:
        return self._exists(Instance.sop_instance_uid == sop_instance_uid)

    def has_file(self, relative_path: str) -> bool:
        """Whether a row names this stored file (settles a commit whose outcome was lost
        with the connection)."""
        return self._exists(Instance.file_path == relative_path)

    def _exists(self, condition: Any) -> bool:
        try:
            with Session(self.engine) as session:
                return session.execute(select(Instance.id).where(condition)).first() is not None
        except SQLAlchemyError as exc:
            raise StorageError(f"index unavailable: {type(exc).__name__}") from exc

    def add(self, received: ReceivedInstance) -> int:
        """Commit one instance row (and its parents); returns the instance's row id.

        Raises DuplicateInstanceError when the SOP Instance UID is already indexed.
        """
        try:
            with Session(self.engine) as session, session.begin():
                patient_fk = self._ensure(
                    session,
                    Patient,
                    {"patient_id": received.patient.patient_id, "issuer": received.patient.issuer},
                    vars(received.patient),
                )
                study_values = vars(received.study) | {
                    "patient_fk": patient_fk,
                    "created_at": received.reception.received_at,
                }
                study_fk = self._ensure(
                    session,
                    Study,
                    {"study_instance_uid": received.study.study_instance_uid},
                    study_values,
                )
                series_fk = self._ensure(
                    session,
                    Series,
                    {"series_instance_uid": received.series.series_instance_uid},
                    vars(received.series) | {"study_fk": study_fk},
                )
                row = Instance(
                    **vars(received.instance),
                    series_fk=series_fk,
                    file_path=received.file.path,
                    file_size=received.file.size,
                    sha256=received.file.sha256,
                    calling_ae=received.reception.calling_ae,
                    peer_address=received.reception.peer_address,
                    received_at=received.reception.received_at,
                )
                session.add(row)
                session.flush()
                _count_instance(session, series_fk, received.reception.received_at)
                return row.id
        except IntegrityError as exc:
            if self.contains(received.instance.sop_instance_uid):
                raise DuplicateInstanceError(received.instance.sop_instance_uid) from exc
            raise StorageError(f"index refused the instance: {type(exc.orig).__name__}") from exc
        except SQLAlchemyError as exc:
            raise StorageError(f"index unavailable: {type(exc).__name__}") from exc

    def _ensure(
        self,
        session: Session,
        table: type[Base],
        key: dict[str, Any],
        values: dict[str, Any],
    ) -> int:
        """Id of the row matching ``key``, inserting ``values`` first when there is none."""
        columns = table.__table__.c
        where = [columns[name] == value for name, value in key.items()]
        found = session.execute(select(columns.id).where(*where)).scalar()
        if found is not None:
            return int(found)
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(table).values(**values).on_conflict_do_nothing(index_elements=list(key))
        session.execute(statement)
        return int(session.execute(select(columns.id).where(*where)).scalar_one())

    def studies(self) -> list[StudySummary]:
        query = (
            select(
                Study.study_instance_uid,
                func.count(Instance.id),
                func.min(Instance.received_at),
                func.max(Instance.received_at),
            )
            .join(Series, Series.study_fk == Study.id)
            .join(Instance, Instance.series_fk == Series.id)
            .group_by(Study.id, Study.study_instance_uid)
            .order_by(func.min(Instance.received_at))
        )
        modality_query = (
            select(Study.study_instance_uid, Series.modality)
            .join(Series, Series.study_fk == Study.id)
            .distinct()
        )
        with Session(self.engine) as session:
            modalities: dict[str, set[str]] = {}
            for uid, modality in session.execute(modality_query):
                if modality:
                    modalities.setdefault(uid, set()).add(modality)
            return [
                StudySummary(
                    study_instance_uid=uid,
                    modalities=tuple(sorted(modalities.get(uid, set()))),
                    instance_count=count,
                    first_received_at=aware_required(first),
                    last_received_at=aware_required(last),
                )
                for uid, count, first, last in session.execute(query)
            ]

    def instances(self, study_instance_uid: str) -> list[InstanceSummary]:
        query = (
            select(Instance, Series.series_instance_uid)
            .join(Series, Instance.series_fk == Series.id)
            .join(Study, Series.study_fk == Study.id)
            .where(Study.study_instance_uid == study_instance_uid)
            .order_by(Series.series_number, Instance.instance_number, Instance.id)
        )
        with Session(self.engine) as session:
            return [
                InstanceSummary(
                    sop_instance_uid=row.sop_instance_uid,
                    sop_class_uid=row.sop_class_uid,
                    transfer_syntax_uid=row.transfer_syntax_uid,
                    series_instance_uid=series_uid,
                    file_path=row.file_path,
                    file_size=row.file_size,
                    sha256=row.sha256,
                    received_at=aware_required(row.received_at),
                    purged_at=aware(row.purged_at),
                )
                for row, series_uid in session.execute(query)
            ]

    def patient_of(self, study_instance_uid: str) -> tuple[str, str | None] | None:
        """(Patient ID, name) of a study, for audit records."""
        query = (
            select(Patient.patient_id, Patient.patient_name)
            .join(Study, Study.patient_fk == Patient.id)
            .where(Study.study_instance_uid == study_instance_uid)
        )
        with Session(self.engine) as session:
            row = session.execute(query).first()
            return (row[0], row[1]) if row else None

    def senders(self, study_instance_uid: str) -> list[str]:
        """Calling AE titles that sent instances of the study, first sender first."""
        query = (
            select(Instance.calling_ae, func.min(Instance.received_at))
            .join(Series, Instance.series_fk == Series.id)
            .join(Study, Series.study_fk == Study.id)
            .where(Study.study_instance_uid == study_instance_uid)
            .group_by(Instance.calling_ae)
            .order_by(func.min(Instance.received_at))
        )
        with Session(self.engine) as session:
            return [ae for ae, _first in session.execute(query)]

    def file_paths(self) -> set[str]:
        """Every stored file the index knows, for reconciling with the file store."""
        with Session(self.engine) as session:
            query = select(Instance.file_path).where(Instance.purged_at.is_(None))
            return set(session.execute(query).scalars())


def _count_instance(session: Session, series_fk: int, received_at: datetime) -> None:
    """One more instance for the study its series belongs to (the header's study may differ
    when a series UID was reused), newest reception kept; in the database, so parallel
    receivers (processes or hosts) never lose a count."""
    study_of_series = select(Series.study_fk).where(Series.id == series_fk).scalar_subquery()
    newer = or_(Study.last_received_at.is_(None), Study.last_received_at < received_at)
    session.execute(
        update(Study)
        .where(Study.id == study_of_series)
        .values(
            received_count=Study.received_count + 1,
            last_received_at=case((newer, received_at), else_=Study.last_received_at),
        )
    )
