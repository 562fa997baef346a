"""Periodic sweeps, run by APScheduler in the supervising process.

The scheduler only enqueues or re-queues: it opens analysis versions for complete studies,
gives expired leases back to the queue, and clears stale spool files. Workers do the work.
Its job store is the in-memory default, never shared with another scheduler.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable
from datetime import timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from node.audit.syslog import ship
from node.config import Settings
from node.outage import OutageLog, unavailable
from node.pipeline.completion import sweep
from node.tls import describe, site_tls
from storage.audit import AuditTrail
from storage.filestore import FileStore
from storage.outbox import Outbox
from storage.queue import JobQueue
from storage.retention import purge_received_before
from storage.times import utcnow

logger = logging.getLogger(__name__)

LEASE_CHECK_S = 10
SPOOL_CHECK_S = 600
RETENTION_CHECK_S = 3600


def build_scheduler(settings: Settings, engine: Engine) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(
        timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1}
    )
    quiet = timedelta(seconds=settings.pipeline.quiet_seconds)
    outage = OutageLog("index database", "completion sweeps and lease recovery wait")
    scheduler.add_job(
        guarded(outage, lambda: sweep(engine, utcnow(), quiet)),
        "interval",
        seconds=settings.pipeline.sweep_interval_seconds,
        id="completion-sweep",
    )
    scheduler.add_job(
        guarded(outage, lambda: recover_leases(engine)),
        "interval",
        seconds=LEASE_CHECK_S,
        id="lease-recovery",
    )
    scheduler.add_job(
        lambda: sweep_stale_spool(settings), "interval", seconds=SPOOL_CHECK_S, id="spool-sweep"
    )
    if settings.storage.retention_days > 0:
        scheduler.add_job(
            guarded(outage, lambda: purge_expired(settings, engine)),
            "interval",
            seconds=RETENTION_CHECK_S,
            id="retention-purge",
            next_run_time=utcnow(),
        )
    if settings.audit.syslog_host:
        trail = AuditTrail(engine)
        tls = site_tls(settings)
        client = None if tls is None else tls.client
        scheduler.add_job(
            guarded(outage, lambda: ship_audit(trail, settings, client)),
            "interval",
            seconds=settings.audit.ship_interval_seconds,
            id="audit-shipping",
        )
    return scheduler


def guarded(outage: OutageLog, work: Callable[[], object]) -> Callable[[], None]:
    """``work`` as a scheduled job that waits out a database outage, saying so once (the
    scheduler would log each failed run with its traceback); other errors still reach it."""

    def run() -> None:
        try:
            work()
        except Exception as exc:
            if not unavailable(exc):
                raise
            outage.failed(exc)
        else:
            outage.succeeded()

    return run


def ship_audit(
    trail: AuditTrail, settings: Settings, tls: Callable[[], ssl.SSLContext] | None = None
) -> None:
    try:
        ship(trail, settings.audit, tls=tls)
    except OSError as exc:
        logger.warning(
            "audit collector %s:%d unreachable (%s); will retry",
            settings.audit.syslog_host,
            settings.audit.syslog_port,
            describe(exc) if isinstance(exc, ssl.SSLError) else exc.strerror,
        )


def purge_expired(settings: Settings, engine: Engine) -> int:
    now = utcnow()
    cutoff = now - timedelta(days=settings.storage.retention_days)
    purged = purge_received_before(engine, FileStore(settings.storage_root), cutoff, now)
    if purged:
        logger.info(
            "retention: purged %d instance(s) received before %s",
            purged,
            cutoff.isoformat(timespec="seconds"),
        )
    return purged


def recover_leases(engine: Engine) -> None:
    now = utcnow()
    jobs = JobQueue(engine).recover_expired(now)
    deliveries = Outbox(engine).recover_expired(now)
    if jobs or deliveries:
        logger.warning(
            "re-queued %d job(s) and %d delivery(ies) whose worker was lost", len(jobs), deliveries
        )


def sweep_stale_spool(settings: Settings) -> None:
    """Spool files untouched for far longer than any transfer may stall are leftovers."""
    store = FileStore(settings.storage_root)
    horizon = time.time() - 4 * settings.node.network_timeout_s
    removed = 0
    for path in store.spool_dir.iterdir():
        try:
            if path.is_file() and path.stat().st_mtime < horizon:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    if removed:
        logger.warning("removed %d stale spool file(s)", removed)
