"""What the completion sweep needs to know about studies with unanalysed instances, and the
atomic step that opens a new analysis version for one of them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from storage.claims import rows_changed
from storage.queue import enqueue_in
from storage.tables import PENDING, Instance, Series, Study
from storage.times import aware, aware_required


@dataclass(frozen=True)
class ViewFacts:
    """One instance, as far as study completion is concerned."""

    sop_class_uid: str
    modality: str | None
    laterality: str | None
    view_position: str | None
    view_code: str | None


@dataclass(frozen=True)
class StudyProgress:
    study_instance_uid: str
    analysed_version: int
    analysed_through: datetime | None
    last_received_at: datetime
    instances: tuple[ViewFacts, ...]
    received_count: int  # what the new version will cover


def pending_studies(engine: Engine) -> list[StudyProgress]:
    """Studies with more instances than their latest analysis version covers (through the
    partial index of pending studies: the cost is what is pending, not the index's size)."""
    query = select(
        Study.id,
        Study.study_instance_uid,
        Study.analysed_version,
        Study.analysed_through,
        Study.last_received_at,
        Study.received_count,
    ).where(PENDING)
    facts = select(
        Instance.sop_class_uid,
        Series.modality,
        func.coalesce(Instance.image_laterality, Series.laterality),
        Instance.view_position,
        Instance.view_code,
    ).join(Series, Instance.series_fk == Series.id)
    with Session(engine) as session:
        found = []
        for study_id, uid, version, through, last_received, count in session.execute(query):
            if last_received is None:  # never with instances: both change together
                continue
            rows = session.execute(facts.where(Series.study_fk == study_id)).all()
            found.append(
                StudyProgress(
                    study_instance_uid=uid,
                    analysed_version=version,
                    analysed_through=aware(through),
                    last_received_at=aware_required(last_received),
                    instances=tuple(ViewFacts(*row) for row in rows),
                    received_count=count,
                )
            )
        return found


def open_version(engine: Engine, progress: StudyProgress, kind: str, now: datetime) -> int | None:
    """Enqueue the next analysis version covering everything received so far.

    Conditional on the study still being at the version the sweep saw, so two sweeps (or
    two nodes) never open the same version twice. Returns the job id, or None if another
    sweep got there first.
    """
    version = progress.analysed_version + 1
    with Session(engine) as session, session.begin():
        changed = rows_changed(
            session,
            update(Study)
            .where(
                Study.study_instance_uid == progress.study_instance_uid,
                Study.analysed_version == progress.analysed_version,
            )
            .values(
                analysed_version=version,
                analysed_count=progress.received_count,
                analysed_through=progress.last_received_at,
            ),
        )
        if changed != 1:
            return None
        job_id, _created = enqueue_in(session, progress.study_instance_uid, version, kind, now)
        return job_id
