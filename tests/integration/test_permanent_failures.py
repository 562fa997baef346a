"""A deterministic analysis failure is dead-lettered at once, with its reason in the job row,
its event, a log line and an audit record; passing failures follow the configured policy
(SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from sqlalchemy import Engine

from models.synthetic import SyntheticPatient, mr_slice
from node.audit.messages import Auditor, Outcome
from node.config import Settings
from node.pipeline.analysis import PermanentAnalysisError, StudyInput
from node.pipeline.analysis_worker import AnalysisWorker
from storage.audit import AuditTrail
from storage.filestore import FileStore
from storage.outbox import Outbox
from storage.queue import JobQueue, JobState
from tests.support.stored import analysis_worker, store_dataset

PATIENT = SyntheticPatient()
REASON = "the pixel data of a stored instance cannot be decoded (ValueError)"


class Failing:
    """An analysis that always fails with ``error``, counting its calls."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def __call__(self, study: StudyInput) -> Sequence[Dataset]:
        self.calls += 1
        raise self.error


def queued_study(engine: Engine, store: FileStore) -> int:
    ds = mr_slice(PATIENT)
    store_dataset(engine, store, ds, "PACS")
    job_id, _ = JobQueue(engine).enqueue(str(ds.StudyInstanceUID), 1, "analysis")
    return job_id


def failing_worker(
    engine: Engine, store: FileStore, analysis: Failing, pipeline: dict[str, float]
) -> AnalysisWorker:
    settings = Settings(
        peers=[{"name": "pacs", "ae_title": "PACS", "host": "127.0.0.1", "port": 104}],
        pipeline=pipeline,
    )
    runner = analysis_worker(engine, store, analysis, settings)
    runner.auditor = Auditor(engine, "BREASTNODE")
    return runner


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    store = FileStore(tmp_path / "store")
    store.prepare()
    return store


def test_a_permanent_failure_is_dead_lettered_at_once(
    engine: Engine, store: FileStore, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = queued_study(engine, store)
    analysis = Failing(PermanentAnalysisError(REASON))
    runner = failing_worker(engine, store, analysis, {"lease_seconds": 30})
    with caplog.at_level(logging.ERROR, logger="node.pipeline.analysis_worker"):
        assert runner.run_once() is not None
    queue = JobQueue(engine)
    [job] = queue.jobs()
    assert (job.state, job.attempts) == (JobState.DEAD, 1)
    assert job.last_error == f"PermanentAnalysisError: {REASON}"
    assert job.finished_at is not None
    before, after, detail = queue.events(job_id)[-1]
    assert (before, after) == ("running", "dead")
    assert detail == f"dead: PermanentAnalysisError: {REASON}"
    assert runner.run_once(now=job.created_at + timedelta(hours=1)) is None  # never again
    assert analysis.calls == 1
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "dead letter" in line and REASON in line
    assert PATIENT.patient_name not in line and PATIENT.patient_id not in line
    [record] = AuditTrail(engine).records()
    assert record.outcome == int(Outcome.SERIOUS_FAILURE)
    assert f"dead letter: analysis version 1: {REASON} (permanent failure)" in record.message
    assert Outbox(engine).deliveries() == []


def test_a_passing_failure_is_retried(engine: Engine, store: FileStore) -> None:
    queued_study(engine, store)
    runner = failing_worker(engine, store, Failing(RuntimeError("device busy")), {})
    assert runner.run_once() is not None
    [job] = JobQueue(engine).jobs()
    assert (job.state, job.attempts) == (JobState.QUEUED, 1)
    delay = job.next_run_at - job.first_attempt_at if job.first_attempt_at else None
    assert delay is not None and timedelta(seconds=15) <= delay <= timedelta(seconds=30)
    assert AuditTrail(engine).records() == []


def test_the_retry_policy_comes_from_the_configuration(engine: Engine, store: FileStore) -> None:
    queued_study(engine, store)
    pipeline = {"retry_max_attempts": 2, "retry_backoff_base_seconds": 60}
    runner = failing_worker(engine, store, Failing(RuntimeError("device busy")), pipeline)
    assert runner.run_once() is not None
    [job] = JobQueue(engine).jobs()
    assert job.state is JobState.QUEUED and job.first_attempt_at is not None
    assert timedelta(seconds=30) <= job.next_run_at - job.first_attempt_at <= timedelta(minutes=1)
    assert runner.run_once(now=job.next_run_at) is not None
    [job] = JobQueue(engine).jobs()
    assert (job.state, job.attempts) == (JobState.DEAD, 2)
    [record] = AuditTrail(engine).records()
    assert record.outcome == int(Outcome.SERIOUS_FAILURE)
