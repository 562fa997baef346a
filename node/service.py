"""Start-up and shut-down of the running node, in the order durability needs.

Schema migrations, then reconciliation of the file store with the index (a crash may have
left spool files or unacknowledged objects), and only then do receivers start listening.
With ``node.workers`` above one, the receivers are separate processes sharing the port
(SO_REUSEPORT), supervised here: a worker that dies is replaced and its spool swept, and
every worker dies with the supervisor, so a killed node is a stopped node.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
from multiprocessing.process import BaseProcess
from types import FrameType

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from node.config import Settings
from node.dicom.access import PeerPolicy
from node.dicom.ingest import Ingestor
from node.dicom.scp import StorageSCP
from node.dicom.spool import spool_into, spool_prefix
from node.errors import NodeError
from node.lifecycle import die_with_parent
from node.logsetup import configure
from storage.db import open_engine
from storage.filestore import FileStore
from storage.index import InstanceIndex
from storage.migrate import upgrade
from storage.recovery import reconcile

logger = logging.getLogger(__name__)

SUPERVISION_INTERVAL_S = 1.0


def open_index(settings: Settings) -> tuple[Engine, InstanceIndex]:
    """Open the index database and bring its schema up to date."""
    try:
        engine = open_engine(settings.database_url)
        upgrade(engine)
    except (SQLAlchemyError, OSError) as exc:
        raise NodeError(f"cannot open the index database: {type(exc).__name__}: {exc}") from exc
    return engine, InstanceIndex(engine)


def prepare(settings: Settings) -> None:
    """Create the store, migrate the index and reconcile the two; before any receiver runs."""
    store = FileStore(settings.storage_root)
    try:
        store.prepare()
    except OSError as exc:
        raise NodeError(f"cannot prepare the store at {store.root}: {exc}") from exc
    engine, index = open_index(settings)
    try:
        result = reconcile(store, index)
    finally:
        engine.dispose()
    logger.info(
        "store reconciled: %d spool file(s) and %d unindexed object(s) removed",
        result.spool_files_removed,
        result.orphan_files_removed,
    )
    if result.missing_files:
        logger.error(
            "%d indexed object(s) missing from the store, e.g. %s",
            len(result.missing_files),
            result.missing_files[0],
        )


class Receiver:
    """One process's Storage SCP with its own database connections."""

    def __init__(self, settings: Settings, shared_port: bool = False) -> None:
        self.settings = settings
        self.shared_port = shared_port
        self.store = FileStore(settings.storage_root)
        self.engine: Engine | None = None
        self.scp: StorageSCP | None = None

    def start(self) -> tuple[str, int]:
        self.engine, index = open_index(self.settings)
        spool_into(self.store.spool_dir)
        ingestor = Ingestor(self.store, index, self.settings.storage.min_free_bytes)
        policy = PeerPolicy(self.settings.peers)
        self.scp = StorageSCP(self.settings.node, ingestor, policy, self.shared_port)
        try:
            address = self.scp.start()
        except OSError as exc:
            raise NodeError(f"cannot listen on port {self.settings.node.port}: {exc}") from exc
        logger.info(
            "receiver %d listening as AE %r on %s:%d (index: %s, %d peer(s) allowed)",
            os.getpid(),
            self.settings.node.ae_title,
            *address,
            self.engine.dialect.name,
            len(self.settings.peers),
        )
        return address

    def stop(self) -> None:
        if self.scp is not None:
            self.scp.stop()
            self.scp = None
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None


def worker_count(settings: Settings) -> int:
    configured = settings.node.workers
    return configured if configured > 0 else max(1, min(os.cpu_count() or 1, 4))


def serve(settings: Settings) -> int:
    """Run until SIGINT or SIGTERM."""
    stopping = _stop_on_signals()
    prepare(settings)
    workers = worker_count(settings)
    if workers == 1:
        _run_receiver(settings, stopping, shared_port=False)
    else:
        _check_port_free(settings)
        _supervise(settings, workers, stopping)
    logger.info("BreastNode stopped")
    return 0


def _stop_on_signals() -> threading.Event:
    stopping = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("received %s, shutting down", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return stopping


def _run_receiver(settings: Settings, stopping: threading.Event, shared_port: bool) -> None:
    receiver = Receiver(settings, shared_port)
    receiver.start()
    try:
        stopping.wait()
    finally:
        receiver.stop()


def _worker_main(settings: Settings, log_level: str) -> None:
    """Entry point of a receiver process (spawned, so it starts from a clean interpreter)."""
    die_with_parent()
    configure(log_level)
    stopping = _stop_on_signals()
    try:
        _run_receiver(settings, stopping, shared_port=True)
    except NodeError as exc:
        logger.error("receiver %d could not start: %s", os.getpid(), exc)
        raise SystemExit(1) from exc


def _check_port_free(settings: Settings) -> None:
    """Refuse to share a port with another program that already listens on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((settings.node.host, settings.node.port))
        except OSError as exc:
            raise NodeError(f"port {settings.node.port} is already in use: {exc}") from exc


def _supervise(settings: Settings, count: int, stopping: threading.Event) -> None:
    context = multiprocessing.get_context("spawn")
    level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    store = FileStore(settings.storage_root)

    def spawn() -> BaseProcess:
        process = context.Process(target=_worker_main, args=(settings, level), daemon=False)
        process.start()
        return process

    workers = [spawn() for _ in range(count)]
    logger.info("BreastNode supervising %d receiver processes on port %d", count,
                settings.node.port)
    try:
        while not stopping.wait(SUPERVISION_INTERVAL_S):
            for slot, process in enumerate(workers):
                if process.is_alive():
                    continue
                logger.error("receiver %s exited with %s; replacing it", process.pid,
                             process.exitcode)
                if process.pid is not None:
                    store.sweep_spool(prefix=spool_prefix(process.pid))
                workers[slot] = spawn()
    finally:
        for process in workers:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        for process in workers:
            process.join(15)
            if process.is_alive():
                process.kill()
                process.join(5)
