"""Prometheus metrics, read from the database at scrape time.

Receivers and the pipeline worker are separate processes; rather than merging per-process
counters, the supervisor's collector asks the database, which every process writes to and
which survives restarts. Latency histograms are built from the recorded timestamps:
receive->complete (first instance to analysis version opened), complete->analysed (job
created to done) and analysed->delivered (job done to result stored by the destination).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from node.outage import unavailable
from storage.outbox import DeliveryState
from storage.queue import JobState
from storage.statistics import pipeline_figures

BUCKETS_S = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


def _database_up(up: bool) -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "breastnode_database_up",
        "1 when the index database answered this scrape; the other figures need it",
        value=int(up),
    )


def histogram(name: str, documentation: str, values: Iterable[float]) -> HistogramMetricFamily:
    ordered = sorted(values)
    buckets = [(str(bound), bisect.bisect_right(ordered, bound)) for bound in BUCKETS_S]
    buckets.append(("+Inf", len(ordered)))
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=sum(ordered))


class DatabaseCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        try:
            figures = pipeline_figures(self.engine)
        except Exception as exc:  # a scrape during an outage says so instead of failing
            if not unavailable(exc):
                raise
            yield _database_up(False)
            return
        yield _database_up(True)
        job_states, delivery_states = figures.job_states, figures.delivery_states
        instances = figures.instances
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
            figures.receive_to_complete_s,
        )
        yield histogram(
            "breastnode_complete_to_analysed_seconds",
            "Analysis queued to analysis done",
            figures.complete_to_analysed_s,
        )
        yield histogram(
            "breastnode_analysed_to_delivered_seconds",
            "Analysis done to result stored by the destination",
            figures.analysed_to_delivered_s,
        )
