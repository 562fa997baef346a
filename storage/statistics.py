"""Figures about the whole pipeline, read from the database: counts by state and the
timestamps that per-stage latencies are made of. The node's metrics endpoint turns them into
Prometheus families; keeping the queries here keeps the ORM inside storage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from storage.outbox import DeliveryState
from storage.outbox_tables import Delivery, ResultObject
from storage.queue import JobState
from storage.queue_tables import Job
from storage.tables import Instance, Series, Study
from storage.times import aware_required


@dataclass(frozen=True)
class PipelineFigures:
    instances: int
    job_states: dict[str, int]
    delivery_states: dict[str, int]
    receive_to_complete_s: list[float]  # first instance received -> first version queued
    complete_to_analysed_s: list[float]  # job created -> job done
    analysed_to_delivered_s: list[float]  # job done -> result stored by the destination


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return (aware_required(later) - aware_required(earlier)).total_seconds()


def _present(pairs: Sequence[tuple[datetime | None, datetime | None]]) -> list[float]:
    return [s for s in (_seconds(later, earlier) for later, earlier in pairs) if s is not None]


def pipeline_figures(engine: Engine) -> PipelineFigures:
    with Session(engine) as session:
        instances = session.scalar(select(func.count(Instance.id))) or 0
        job_states = dict(
            session.execute(select(Job.state, func.count(Job.id)).group_by(Job.state)).all()
        )
        delivery_states = dict(
            session.execute(
                select(Delivery.state, func.count(Delivery.id)).group_by(Delivery.state)
            ).all()
        )
        first_received = (
            select(Study.study_instance_uid, func.min(Instance.received_at).label("first"))
            .join(Series, Series.study_fk == Study.id)
            .join(Instance, Instance.series_fk == Series.id)
            .group_by(Study.study_instance_uid)
            .subquery()
        )
        opened = session.execute(
            select(Job.created_at, first_received.c.first)
            .join(first_received, first_received.c.study_instance_uid == Job.study_instance_uid)
            .where(Job.version == 1)
        ).all()
        analysed = session.execute(
            select(Job.finished_at, Job.created_at).where(Job.state == JobState.DONE.value)
        ).all()
        delivered = session.execute(
            select(Delivery.delivered_at, Job.finished_at)
            .join(ResultObject, Delivery.result_fk == ResultObject.id)
            .join(Job, ResultObject.job_fk == Job.id)
            .where(Delivery.state == DeliveryState.DELIVERED.value)
        ).all()
        return PipelineFigures(
            instances=int(instances),
            job_states=job_states,
            delivery_states=delivery_states,
            receive_to_complete_s=_present(opened),
            complete_to_analysed_s=_present(analysed),
            analysed_to_delivered_s=_present(delivered),
        )
