"""Read model of analysed studies: each study's latest stored result of one SOP class with
the study's accession number and date, for audits that join the node's results with what a
site learnt later. No table holds scores; they stay in the result objects themselves."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from storage.outbox_tables import ResultObject
from storage.tables import Study


@dataclass(frozen=True)
class AnalysedStudy:
    study_instance_uid: str
    accession_number: str | None
    study_date: str | None  # YYYYMMDD as received, when the images said
    version: int  # the analysis version of ``file_path``
    file_path: str  # relative to the file store's root


def analysed_studies(engine: Engine, sop_class_uid: str) -> list[AnalysedStudy]:
    """Every study with a stored result of ``sop_class_uid``: its latest version's object
    (the newest row when a version holds several)."""
    latest = (
        select(
            ResultObject.study_instance_uid.label("study"),
            func.max(ResultObject.id).label("newest"),
        )
        .where(ResultObject.sop_class_uid == sop_class_uid)
        .group_by(ResultObject.study_instance_uid)
        .subquery()
    )
    query = (
        select(
            ResultObject.study_instance_uid,
            Study.accession_number,
            Study.study_date,
            ResultObject.version,
            ResultObject.file_path,
        )
        .join(latest, latest.c.newest == ResultObject.id)
        .outerjoin(Study, Study.study_instance_uid == ResultObject.study_instance_uid)
        .order_by(ResultObject.id)
    )
    with Session(engine) as session:
        return [
            AnalysedStudy(uid, accession or None, date or None, int(version), path)
            for uid, accession, date, version, path in session.execute(query)
        ]
