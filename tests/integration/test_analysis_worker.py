"""The analysis worker against a real index, queue and outbox (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from sqlalchemy import Engine

from models.synthetic import SyntheticPatient, mr_slice
from node.config import Settings
from node.pipeline.analysis import Analysis, StudyInput
from node.pipeline.analysis_worker import AnalysisWorker, destinations_for
from node.pipeline.completion import sweep
from node.pipeline.scheduler import sweep_stale_spool
from storage.filestore import FileStore
from storage.index import InstanceIndex
from storage.outbox import Outbox
from storage.queue import JobQueue, JobState
from storage.times import utcnow
from tests.support.standin_analysis import analyse
from tests.support.stored import analysis_worker, store_dataset

SETTINGS = Settings(
    peers=[
        {"name": "modality", "ae_title": "MODALITY", "host": "127.0.0.1"},
        {"name": "pacs", "ae_title": "PACS", "host": "127.0.0.1", "port": 104},
    ],
    pipeline={"lease_seconds": 30},
)


def receive_study(engine: Engine, store: FileStore, calling_ae: str) -> str:
    ds = mr_slice(SyntheticPatient())
    store_dataset(engine, store, ds, calling_ae)
    return str(ds.StudyInstanceUID)


def worker(
    engine: Engine, store: FileStore, analysis: Analysis, settings: Settings = SETTINGS
) -> AnalysisWorker:
    return analysis_worker(engine, store, analysis, settings)


class RecordingAnalysis:
    """The stand-in, recording its inputs; optionally failing on its first call."""

    def __init__(self, fail_first: bool = False) -> None:
        self.calls: list[StudyInput] = []
        self.fail_first = fail_first

    def __call__(self, study: StudyInput) -> Sequence[Dataset]:
        self.calls.append(study)
        if self.fail_first and len(self.calls) == 1:
            raise RuntimeError("first call fails")
        return analyse(study)


def test_failure_retries_then_results_reach_the_outbox(engine: Engine, tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    store.prepare()
    study = receive_study(engine, store, "MODALITY")
    assert len(sweep(engine, utcnow(), timedelta(seconds=30))) == 1
    analysis = RecordingAnalysis(fail_first=True)
    runner = worker(
        engine,
        store,
        analysis,
        Settings(peers=SETTINGS.peers, routing={"result_destinations": ["pacs"]}),
    )
    assert runner.run_once() is not None
    [job] = JobQueue(engine).jobs()
    assert (job.state, job.attempts) == (JobState.QUEUED, 1)
    # another library's (here a plug-in's) message may quote received values: withheld
    assert job.last_error == f"RuntimeError in {__name__}.__call__ (message withheld)"
    assert runner.run_once() is None  # backing off
    assert runner.run_once(now=utcnow() + timedelta(minutes=5)) is not None
    [job] = JobQueue(engine).jobs()
    assert (job.state, job.attempts) == (JobState.DONE, 2)
    [delivery] = Outbox(engine).deliveries()
    assert delivery.destination == "pacs"
    result = dcmread(store.path_of(delivery.file_path))
    assert result.StudyInstanceUID == study
    assert list(store.stored_objects(results=True)) == [delivery.file_path]
    assert list(store.spool_dir.iterdir()) == []


def test_results_go_back_to_the_sender_when_no_destination_is_configured(
    engine: Engine, tmp_path: Path
) -> None:
    store = FileStore(tmp_path / "store")
    store.prepare()
    index = InstanceIndex(engine)
    from_pacs = receive_study(engine, store, "PACS")
    from_modality = receive_study(engine, store, "MODALITY")
    assert destinations_for(SETTINGS, index, from_pacs) == ["pacs"]
    assert destinations_for(SETTINGS, index, from_modality) == []  # it has no port
    routed = Settings(peers=SETTINGS.peers, routing={"result_destinations": ["pacs"]})
    assert destinations_for(routed, index, from_modality) == ["pacs"]


def test_second_version_sees_the_first_versions_results(engine: Engine, tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    store.prepare()
    study = receive_study(engine, store, "PACS")
    queue = JobQueue(engine)
    analysis = RecordingAnalysis()
    queue.enqueue(study, 1, "analysis")
    worker(engine, store, analysis).run_once()
    queue.enqueue(study, 2, "analysis")
    worker(engine, store, analysis).run_once()
    second = analysis.calls[-1]
    assert second.version == 2
    assert [p.version for p in second.previous_results] == [1]


def test_stale_spool_files_are_swept(tmp_path: Path) -> None:
    settings = Settings(storage={"root": str(tmp_path)})
    store = FileStore(settings.storage_root)
    store.prepare()
    stale, fresh = store.spool_dir / "rx-1-stale.dcm", store.spool_dir / "rx-1-fresh.dcm"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"y")
    old = time.time() - 10 * settings.node.network_timeout_s
    os.utime(stale, (old, old))
    sweep_stale_spool(settings)
    assert [p.name for p in store.spool_dir.iterdir()] == ["rx-1-fresh.dcm"]
