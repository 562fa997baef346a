"""Put a synthetic data set into a store and its index as the SCP would (spool, fsync,
commit, index row), and a worker over them, for tests of what comes after reception."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from pydicom.dataset import Dataset
from sqlalchemy import Engine

from models.synthetic import write
from node.config import Settings
from node.pipeline.analysis import Analysis
from node.pipeline.analysis_worker import AnalysisWorker
from storage.filestore import FileStore
from storage.index import InstanceIndex
from storage.outbox import Outbox
from storage.queue import JobQueue
from storage.records import StoredFile
from storage.times import utcnow
from tests.support.records import received_from


def store_dataset(
    engine: Engine,
    store: FileStore,
    ds: Dataset,
    calling_ae: str = "MODALITY",
    received_at: datetime | None = None,
    named: bool = False,
) -> str:
    """Store ``ds`` (received five minutes ago by default); its relative path."""
    spooled = write(ds, store.spool_dir)
    digest = store.digest_and_sync(spooled)
    relative = store.commit(spooled)
    when = received_at or utcnow() - timedelta(minutes=5)
    stored = StoredFile(relative, digest.size, digest.sha256)
    InstanceIndex(engine).add(received_from(ds, stored, when, calling_ae, named))
    return relative


def analysis_worker(
    engine: Engine, store: FileStore, analysis: Analysis, settings: Settings
) -> AnalysisWorker:
    """A worker on the real queue, index and outbox, with a seeded retry jitter."""
    return AnalysisWorker(
        settings,
        JobQueue(engine),
        InstanceIndex(engine),
        Outbox(engine),
        store,
        analysis,
        "w1",
        random.Random(0),
    )
