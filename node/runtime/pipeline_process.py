"""The pipeline worker process: analysis and delivery loops, away from the receivers.

Started by ``breastnode serve``. Analysis and delivery run in separate threads so a long
analysis never holds results back from PACS.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import timedelta

from node.audit.messages import Auditor
from node.config import Settings
from node.dicom import scu
from node.dicom.scp import quiet_libraries
from node.errors import NodeError
from node.outage import OutageLog, unavailable
from node.pipeline.analysis_worker import AnalysisWorker
from node.pipeline.delivery import DeliverySender
from node.pipeline.model_analysis import analysis_for
from node.pipeline.retry import RetryPolicy
from node.tls import site_tls
from storage.db import open_engine
from storage.filestore import FileStore
from storage.index import InstanceIndex
from storage.outbox import Outbox
from storage.queue import JobQueue

logger = logging.getLogger(__name__)


def delivery_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        base=timedelta(seconds=settings.delivery.backoff_base_seconds),
        cap=timedelta(seconds=settings.delivery.backoff_cap_seconds),
        max_age=timedelta(hours=settings.delivery.max_age_hours),
    )


def run_pipeline(settings: Settings, stopping: threading.Event) -> None:
    """Run the analysis and delivery loops until ``stopping`` is set."""
    tls = site_tls(settings)
    quiet_libraries()  # pydicom's warnings would quote received values (a birth date...)
    engine = open_engine(settings.database_url)
    store = FileStore(settings.storage_root)
    worker_id = f"{socket.gethostname()}:{os.getpid()}"
    outbox = Outbox(engine)
    loops: list[tuple[str, Callable[[], object]]] = []
    auditor = Auditor(
        engine,
        settings.audit.source_id or settings.node.ae_title,
        settings.audit.enterprise_site_id,
    )
    sender = DeliverySender(
        settings,
        outbox,
        store,
        worker_id,
        delivery_policy(settings),
        auditor=auditor,
        send=scu.sender(None if tls is None else tls.client),
    )
    loops.append(("delivery", sender.run_once))
    if settings.pipeline.analysis:
        analysis = analysis_for(settings)
        worker = AnalysisWorker(
            settings,
            JobQueue(engine),
            InstanceIndex(engine),
            outbox,
            store,
            analysis,
            worker_id,
            auditor=auditor,
        )
        loops.append(("analysis", worker.run_once))
    else:
        logger.warning("no [pipeline] analysis configured: complete studies stay queued")
    outage = OutageLog("index database", "analysis and delivery wait")
    threads = [
        threading.Thread(
            target=_loop,
            args=(name, step, stopping, settings.pipeline.poll_seconds, outage),
            name=f"pipeline-{name}",
            daemon=True,
        )
        for name, step in loops
    ]
    for thread in threads:
        thread.start()
    logger.info("pipeline worker %s running: %s", worker_id, ", ".join(n for n, _ in loops))
    stopping.wait()
    for thread in threads:
        thread.join(30)
    engine.dispose()


def _loop(
    name: str,
    step: Callable[[], object],
    stopping: threading.Event,
    poll_s: float,
    outage: OutageLog,
) -> None:
    """Run ``step`` until stopped; a database outage pauses it (one log line for the whole
    outage, shared by the loops), anything else is logged and the loop goes on."""
    while not stopping.is_set():
        try:
            did_work = step() is not None
            outage.succeeded()
        except Exception as exc:  # the loop must survive a database outage or a bug
            did_work = False
            if unavailable(exc):
                outage.failed(exc)
            elif isinstance(exc, NodeError):
                logger.error("%s step failed: %s", name, exc)
            else:
                logger.error("%s step failed: %s", name, type(exc).__name__)
        if not did_work:
            stopping.wait(poll_s)
