"""Start-up and shut-down of the running node, in the order durability needs.

Schema migrations, then reconciliation of the file store with the index (a crash may have
left spool files or unacknowledged objects), and only then do receivers start listening.
With ``node.receivers`` above one, the receivers are separate processes supervised here: the
supervisor owns the port and hands each connection to the least busy receiver
(node.runtime.dispatch); a receiver that dies is replaced and its spool swept, and every receiver
dies with the supervisor, so a killed node is a stopped node.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
from dataclasses import dataclass
from functools import partial
from multiprocessing.process import BaseProcess
from types import FrameType

from sqlalchemy import Engine

from models.serving import CheckpointError, read_verified
from node.audit.associations import AssociationAudit
from node.audit.messages import Auditor, application_activity
from node.config import Settings
from node.dicom.access import PeerPolicy
from node.dicom.ingest import Ingestor
from node.dicom.scp import StorageSCP
from node.dicom.spool import spool_into, spool_prefix
from node.dicom.structure import Limits
from node.dicom.tls import gate_for, plain_ports, transport
from node.dicom.transfer_syntaxes import scratch_prefix
from node.errors import ConfigError, NodeError
from node.logsetup import configure
from node.pipeline.scheduler import build_scheduler
from node.runtime.dispatch import Dispatcher, Slot
from node.runtime.handover import HandoverChannel, start_handover_server
from node.runtime.lifecycle import die_with_parent
from node.runtime.monitoring import HealthCheck, MonitoringServer
from node.runtime.pipeline_process import run_pipeline
from node.runtime.root_lock import RootLock
from node.tls import SiteTLS, site_tls
from storage.db import open_engine, open_index
from storage.errors import StorageError
from storage.filestore import FileStore
from storage.outbox import Outbox
from storage.recovery import reconcile

logger = logging.getLogger(__name__)

SUPERVISION_INTERVAL_S = 1.0
WORKER_START_TIMEOUT_S = 60


def check_checkpoints(settings: Settings) -> None:
    """Fail at start-up, not in the worker, when a configured checkpoint is missing or is
    not the file its manifest describes (hash check only: torch is not imported here)."""
    if settings.pipeline.analysis != "models":
        return
    for weights in (
        settings.mammography_checkpoint,
        settings.mri_checkpoint,
        settings.density_checkpoint,
    ):
        if weights is None:
            continue
        try:
            manifest = read_verified(weights)
        except CheckpointError as exc:
            hint = ""
            if weights in settings.demo_checkpoints:
                hint = "; make the demo one with `breastnode models init-demo`"
            raise ConfigError(f"[models] {exc}{hint}") from exc
        clinical = "validated" if manifest.validated_for_clinical_use else "NOT FOR CLINICAL USE"
        logger.info("model %s %s: %s", manifest.name, manifest.version, clinical)


def prepare(settings: Settings, reconcile_store: bool = True) -> None:
    """Create the store, migrate the index and reconcile the two; before any receiver runs.
    Not reconciled when other nodes run on a shared root (their transfers are in the spool)."""
    check_checkpoints(settings)
    site_tls(settings)  # a certificate, key or CA bundle that does not load stops the start
    store = FileStore(settings.storage_root)
    try:
        store.prepare()
    except OSError as exc:
        raise NodeError(f"cannot prepare the store at {store.root}: {exc}") from exc
    engine, index = open_index(settings.database_url)
    if not reconcile_store:
        engine.dispose()
        return
    try:
        result = reconcile(store, index, Outbox(engine))
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

    def __init__(self, settings: Settings, channel: HandoverChannel | None = None) -> None:
        self.settings = settings
        self.channel = channel
        self.store = FileStore(settings.storage_root)
        self.engine: Engine | None = None
        self.scp: StorageSCP | None = None

    def start(self) -> tuple[str, int]:
        # prepare() migrated the schema before any receiver started; no need to repeat it
        # in every receiver process.
        self.engine, index = open_index(self.settings.database_url, migrate=False)
        spool_into(self.store.spool_dir, self.settings.storage.min_free_bytes)
        limits = Limits.configured(self.settings.validation)
        ingestor = Ingestor(self.store, index, self.settings.storage.min_free_bytes, limits)
        policy = PeerPolicy(self.settings.peers)
        association_audit = AssociationAudit(
            auditor_for(self.settings, self.engine), self.settings.node.ae_title
        )
        serve = (
            None if self.channel is None else partial(start_handover_server, channel=self.channel)
        )
        closed = None if self.channel is None else self.channel.report_closed
        self.scp = StorageSCP(
            self.settings.node,
            ingestor,
            policy,
            serve=serve,
            association_closed=closed,
            audit=association_audit,
            tls=gate_for(self.settings, association_audit.connection_refused),
        )
        try:
            address = self.scp.start()
        except OSError as exc:
            raise NodeError(f"cannot listen on port {self.settings.node.port}: {exc}") from exc
        logger.info(
            "receiver %d ready as AE %r for %s:%d%s (index: %s, %d peer(s) allowed)",
            os.getpid(),
            self.settings.node.ae_title,
            *address,
            transport(self.settings),
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


def auditor_for(settings: Settings, engine: Engine) -> Auditor:
    return Auditor(
        engine,
        settings.audit.source_id or settings.node.ae_title,
        settings.audit.enterprise_site_id,
    )


def worker_count(settings: Settings) -> int:
    configured = settings.node.receivers
    return configured if configured > 0 else max(1, min(os.cpu_count() or 1, 4))


def serve(settings: Settings) -> int:
    """Run until SIGINT or SIGTERM: receivers, the pipeline worker process, the scheduler;
    only while holding the storage root (node.runtime.root_lock), taken before anything."""
    with RootLock(settings.storage_root, settings.storage.shared) as root_lock:
        return _serve(settings, root_lock)


def _serve(settings: Settings, root_lock: RootLock) -> int:
    stopping = _stop_on_signals()
    prepare(settings, reconcile_store=root_lock.alone)
    root_lock.started()
    engine = open_engine(settings.database_url)
    auditor = auditor_for(settings, engine)
    auditor.record(application_activity(settings.node.ae_title, True, auditor.host))
    scheduler = build_scheduler(settings, engine)
    scheduler.start()
    try:
        _supervise(settings, worker_count(settings), stopping, engine)
    finally:
        scheduler.shutdown(wait=False)
        auditor.record(application_activity(settings.node.ae_title, False, auditor.host))
        engine.dispose()
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


def _run_receiver(settings: Settings, stopping: threading.Event, channel: HandoverChannel) -> None:
    receiver = Receiver(settings, channel)
    receiver.start()
    channel.report_ready()
    try:
        stopping.wait()
    finally:
        receiver.stop()


def _child_setup(log_level: str) -> threading.Event:
    die_with_parent()
    configure(log_level)
    return _stop_on_signals()


def _receiver_main(settings: Settings, log_level: str, channel: socket.socket) -> None:
    """Entry point of a receiver process (spawned, so it starts from a clean interpreter)."""
    stopping = _child_setup(log_level)
    try:
        _run_receiver(settings, stopping, HandoverChannel(channel))
    except (NodeError, StorageError) as exc:
        logger.error("receiver %d could not start: %s", os.getpid(), exc)
        raise SystemExit(1) from exc


def _pipeline_main(settings: Settings, log_level: str) -> None:
    """Entry point of the pipeline worker process (analysis and delivery)."""
    stopping = _child_setup(log_level)
    try:
        run_pipeline(settings, stopping)
    except (NodeError, StorageError) as exc:
        logger.error("pipeline worker could not start: %s", exc)
        raise SystemExit(1) from exc


@dataclass
class Child:
    process: BaseProcess
    slot: Slot | None  # receivers have a dispatcher slot; the pipeline worker has none


def _supervise(
    settings: Settings, receivers: int, stopping: threading.Event, engine: Engine
) -> None:
    """Receivers (processes behind the dispatcher, or one in this process) and the pipeline
    worker process, each replaced when it dies."""
    dispatcher: Dispatcher | None = None
    if receivers > 1:
        try:
            dispatcher = Dispatcher(
                settings.node.host, settings.node.port, plain_ports=plain_ports(settings)
            )
        except OSError as exc:
            raise NodeError(f"cannot listen on port {settings.node.port}: {exc}") from exc
    context = multiprocessing.get_context("spawn")
    level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    store = FileStore(settings.storage_root)

    def spawn_receiver() -> Child:
        assert dispatcher is not None
        slot, theirs = dispatcher.add_receiver()
        process = context.Process(target=_receiver_main, args=(settings, level, theirs))
        process.start()
        theirs.close()
        return Child(process, slot)

    def spawn_pipeline() -> Child:
        process = context.Process(target=_pipeline_main, args=(settings, level))
        process.start()
        return Child(process, None)

    local_receiver: Receiver | None = None
    monitoring: MonitoringServer | None = None
    children = [spawn_pipeline()]
    try:
        if dispatcher is not None:
            dispatcher.start_accounting()
            children += [spawn_receiver() for _ in range(receivers)]
            if not dispatcher.wait_ready(WORKER_START_TIMEOUT_S):
                logger.error("not every receiver started within %d s", WORKER_START_TIMEOUT_S)
            dispatcher.start_listening()
        else:
            local_receiver = Receiver(settings)
            local_receiver.start()
        monitoring = _start_monitoring(
            settings,
            engine,
            lambda: {
                "scp": local_receiver is not None
                or any(c.process.is_alive() for c in children if c.slot is not None),
                "worker": any(c.process.is_alive() for c in children if c.slot is None),
            },
        )
        logger.info(
            "BreastNode listening on %s:%d, %d receiver(s), pipeline worker %s",
            settings.node.host,
            settings.node.port,
            receivers,
            children[0].process.pid,
        )
        while not stopping.wait(SUPERVISION_INTERVAL_S):
            for index, child in enumerate(children):
                if child.process.is_alive():
                    continue
                role = "receiver" if child.slot else "pipeline worker"
                logger.error(
                    "%s %s exited with %s; replacing it",
                    role,
                    child.process.pid,
                    child.process.exitcode,
                )
                if child.slot is not None and dispatcher is not None:
                    dispatcher.remove_receiver(child.slot)
                    if child.process.pid is not None:
                        store.sweep_spool(prefix=spool_prefix(child.process.pid))
                    children[index] = spawn_receiver()
                else:
                    if child.process.pid is not None:  # a sender's converted copies
                        store.sweep_spool(prefix=scratch_prefix(child.process.pid))
                    children[index] = spawn_pipeline()
    finally:
        if monitoring is not None:
            monitoring.stop()
        if dispatcher is not None:
            dispatcher.stop()
        if local_receiver is not None:
            local_receiver.stop()
        _stop_children([child.process for child in children])


def _start_monitoring(
    settings: Settings, engine: Engine, health: HealthCheck
) -> MonitoringServer | None:
    if not settings.metrics.port:
        return None
    tls: SiteTLS | None = site_tls(settings)
    try:
        server = MonitoringServer(
            settings.metrics.host,
            settings.metrics.port,
            engine,
            health,
            tls=None if tls is None else tls.https_server,
        )
    except OSError as exc:
        raise NodeError(f"cannot serve metrics on port {settings.metrics.port}: {exc}") from exc
    server.start()
    logger.info(
        "metrics and health at %s://%s:%d/metrics, /healthz",
        "http" if tls is None else "https",
        settings.metrics.host,
        server.port,
    )
    return server


def _stop_children(processes: list[BaseProcess]) -> None:
    for process in processes:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signal.SIGTERM)
    for process in processes:
        process.join(15)
        if process.is_alive():
            process.kill()
            process.join(5)
