"""Prometheus metrics, read from the database at scrape time.

Receivers and the pipeline worker are separate processes; rather than merging per-process
counters, the supervisor's collector asks the database, which every process writes to and
which survives restarts. Latency histograms are built from the recorded timestamps:
receive->complete (first instance to analysis version opened), complete->analysed (job
created to done) and analysed->delivered (job done to result stored by the destination).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from storage.outbox import DeliveryState
from storage.outbox_tables import Delivery, ResultObject
from storage.queue import JobState
from storage.queue_tables import Job
from storage.tables import Instance, Series, Study
from storage.times import aware_required

BUCKETS_S = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


def histogram(name: str, documentation: str, values: Iterable[float]) -> HistogramMetricFamily:
    ordered = sorted(values)
    buckets = [(str(bound), bisect.bisect_right(ordered, bound)) for bound in BUCKETS_S]
    buckets.append(("+Inf", len(ordered)))
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=sum(ordered))


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return (aware_required(later) - aware_required(earlier)).total_seconds()


def _present(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None]


class DatabaseCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        with Session(self.engine) as session:
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

        yield CounterMetricFamily(
            "breastnode_instances_received", "Instances stored and indexed", value=instances
        )
        yield CounterMetricFamily(
            "breastnode_studies_completed",
            "Analysis versions opened for complete studies",
            value=sum(job_states.values()),
        )
        jobs = GaugeMetricFamily("breastnode_jobs", "Analysis jobs by state", labels=["state"])
        for state in JobState:
            jobs.add_metric([state.value], job_states.get(state.value, 0))
        yield jobs
        outbox = GaugeMetricFamily(
            "breastnode_deliveries", "Result deliveries by state", labels=["state"]
        )
        for delivery_state in DeliveryState:
            outbox.add_metric([delivery_state.value], delivery_states.get(delivery_state.value, 0))
        yield outbox
        yield histogram(
            "breastnode_receive_to_complete_seconds",
            "First instance received to analysis queued",
            _present([_seconds(c, f) for c, f in opened]),
        )
        yield histogram(
            "breastnode_complete_to_analysed_seconds",
            "Analysis queued to analysis done",
            _present([_seconds(f, c) for f, c in analysed]),
        )
        yield histogram(
            "breastnode_analysed_to_delivered_seconds",
            "Analysis done to result stored by the destination",
            _present([_seconds(d, f) for d, f in delivered]),
        )
