"""The analysis worker: claim a job, run the analysis under a heartbeat, store its results and
commit them with their outbox rows in the job's own completion.

A worker that dies mid-analysis leaves no committed results; its lease runs out and the
job is claimed again. A worker that lost its lease (it was too slow and the job went to
another) discards what it made.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
from collections.abc import Sequence
from datetime import datetime, timedelta

from pydicom.dataset import Dataset

from node.audit.messages import Auditor, Outcome, StudyObject, analysis_performed
from node.config import Settings
from node.pipeline.analysis import (
    Analysis,
    BatchAnalysis,
    LeftOut,
    PermanentAnalysisError,
    PreviousResult,
    ResultObjects,
    StudyInput,
)
from node.pipeline.completion import ANALYSIS
from node.pipeline.lease import heartbeat
from node.pipeline.retry import Failure, RetryPolicy, decide
from node.printable import failure_text
from storage.filestore import FileStore
from storage.index import InstanceIndex
from storage.leases import LeaseLost
from storage.outbox import Outbox, StoredResult, complete_job_with_results
from storage.queue import JobQueue, JobView
from storage.study_files import stored_instances
from storage.times import utcnow

logger = logging.getLogger(__name__)


def analysis_retry(settings: Settings) -> RetryPolicy:
    """The retry policy of analysis jobs, from ``[pipeline] retry_*``."""
    pipeline = settings.pipeline
    return RetryPolicy(
        base=timedelta(seconds=pipeline.retry_backoff_base_seconds),
        cap=timedelta(seconds=pipeline.retry_backoff_cap_seconds),
        max_age=timedelta(hours=pipeline.retry_max_age_hours),
        max_attempts=pipeline.retry_max_attempts or None,
    )


def destinations_for(settings: Settings, index: InstanceIndex, study_uid: str) -> list[str]:
    """Configured result destinations, else the peer (with a port) that sent the study."""
    if settings.routing.result_destinations:
        return list(settings.routing.result_destinations)
    for calling_ae in index.senders(study_uid):
        for peer in settings.peers:
            if peer.ae_title.strip() == calling_ae.strip() and peer.port is not None:
                return [peer.name]
    return []


class AnalysisWorker:
    def __init__(
        self,
        settings: Settings,
        queue: JobQueue,
        index: InstanceIndex,
        outbox: Outbox,
        store: FileStore,
        analysis: Analysis,
        worker_id: str,
        rng: random.Random | None = None,
        auditor: Auditor | None = None,
    ) -> None:
        self.auditor = auditor
        self.settings = settings
        self.queue = queue
        self.index = index
        self.outbox = outbox
        self.store = store
        self.analysis = analysis
        self.worker_id = worker_id
        self.lease = timedelta(seconds=settings.pipeline.lease_seconds)
        self.retry = analysis_retry(settings)
        self.rng = rng or random.Random()

    def run_once(self, now: datetime | None = None) -> JobView | None:
        """Claim a job (and, when the analysis takes several studies at once, whatever else
        is due, up to its ``studies_per_batch``), analyse, and finish each job."""
        job = self.queue.claim(self.worker_id, self.lease, kinds=[ANALYSIS], now=now)
        if job is None:
            return None
        jobs = [job]
        many: BatchAnalysis | None = (
            self.analysis if isinstance(self.analysis, BatchAnalysis) else None
        )
        while many is not None and len(jobs) < many.studies_per_batch:
            more = self.queue.claim(self.worker_id, self.lease, kinds=[ANALYSIS], now=now)
            if more is None:
                break
            jobs.append(more)
        for claimed in jobs:
            logger.info(
                "analysing study %s version %d (job %d, attempt %d)",
                claimed.study_instance_uid,
                claimed.version,
                claimed.id,
                claimed.attempts,
            )
        outcomes: list[Sequence[Dataset] | Exception]
        with contextlib.ExitStack() as beats:
            for claimed in jobs:
                beat = functools.partial(
                    self.queue.heartbeat, claimed.id, self.worker_id, self.lease
                )
                beats.enter_context(
                    heartbeat(beat, self.lease.total_seconds() / 3, f"job {claimed.id}")
                )
            inputs = [self._input(claimed) for claimed in jobs]
            if many is not None and len(jobs) > 1:
                try:
                    outcomes = list(many.many(inputs))
                except Exception as exc:
                    outcomes = [exc] * len(jobs)
            else:
                try:
                    objects = self.analysis(inputs[0])
                    outcomes = [objects if isinstance(objects, ResultObjects) else list(objects)]
                except Exception as exc:
                    outcomes = [exc]
        for claimed, outcome in zip(jobs, outcomes, strict=True):
            self._finish(claimed, outcome)
        return job

    def _finish(self, job: JobView, outcome: Sequence[Dataset] | Exception) -> None:
        if isinstance(outcome, Exception):
            self._failed(job, outcome)
            return
        results: list[StoredResult] = []
        try:
            for ds in outcome:
                results.append(self._store(ds))
        except Exception as exc:
            for result in results:
                self.store.remove(result.file_path)
            self._failed(job, exc)
            return
        destinations = destinations_for(self.settings, self.index, job.study_instance_uid)
        if not destinations:
            logger.warning(
                "study %s has no result destination (no [routing] "
                "result_destinations and its sender has no port)",
                job.study_instance_uid,
            )
        try:
            complete_job_with_results(
                self.outbox.engine, job.id, self.worker_id, results, destinations, utcnow()
            )
        except LeaseLost:
            for result in results:
                self.store.remove(result.file_path)
            logger.warning(
                "job %d was taken over; its %d result(s) discarded", job.id, len(results)
            )
            return
        logger.info(
            "study %s version %d analysed: %d result(s) for %s",
            job.study_instance_uid,
            job.version,
            len(results),
            ", ".join(destinations) or "nobody",
        )
        self._audit(
            job,
            Outcome.SUCCESS,
            f"analysis version {job.version}: {len(results)} result object(s)",
            {r.sop_class_uid: 1 for r in results},
        )
        for left_out in outcome.left_out if isinstance(outcome, ResultObjects) else ():
            self._left_out(job, left_out)

    def _left_out(self, job: JobView, left_out: LeftOut) -> None:
        """One instance failed for good; the study's others were analysed. Not tried again
        in this version: said once, in a log line and an audit record."""
        logger.error(
            "SOP Instance %s of study %s left out of analysis version %d (permanent failure): %s",
            left_out.sop_instance_uid,
            job.study_instance_uid,
            job.version,
            left_out.reason,
        )
        self._audit(
            job,
            Outcome.SERIOUS_FAILURE,
            f"analysis version {job.version}: SOP Instance {left_out.sop_instance_uid} left "
            f"out: {left_out.reason} (permanent failure)",
        )

    def _audit(
        self,
        job: JobView,
        outcome: Outcome,
        description: str,
        sop_classes: dict[str, int] | None = None,
    ) -> None:
        if self.auditor is None:
            return
        patient = self.index.patient_of(job.study_instance_uid)
        study = StudyObject(
            job.study_instance_uid,
            sop_classes or {},
            patient[0] if patient else None,
            patient[1] if patient else None,
        )
        self.auditor.record(
            analysis_performed(study, self.settings.node.ae_title, outcome, description)
        )

    def _input(self, job: JobView) -> StudyInput:
        instances = stored_instances(self.index, self.store, job.study_instance_uid)
        previous = tuple(
            PreviousResult(uid, sop_class, version, self.store.path_of(path))
            for uid, sop_class, version, path in self.outbox.results_of(job.study_instance_uid)
            if version < job.version
        )
        return StudyInput(job.study_instance_uid, job.version, instances, previous)

    def _store(self, ds: Dataset) -> StoredResult:
        spooled = self.store.spool_dir / f"result-{random.getrandbits(64):016x}.dcm"
        ds.save_as(spooled, enforce_file_format=True)
        digest = self.store.digest_and_sync(spooled)
        relative = self.store.commit(spooled, results=True)
        return StoredResult(
            str(ds.SOPInstanceUID), str(ds.SOPClassUID), relative, digest.size, digest.sha256
        )

    def _failed(self, job: JobView, exc: Exception) -> None:
        now = utcnow()
        permanent = isinstance(exc, PermanentAnalysisError)
        error = failure_text(exc)[:500]
        decision = decide(
            Failure.PERMANENT if permanent else Failure.TRANSIENT,
            job.attempts,
            job.first_attempt_at or now,
            now,
            self.retry,
            self.rng,
        )
        try:
            self.queue.fail(job.id, self.worker_id, error, decision.retry_at, now)
        except LeaseLost:
            return
        if permanent:
            # Our own message, made without patient data (PermanentAnalysisError's contract).
            logger.error(
                "dead letter: analysis of study %s version %d cannot succeed: %s",
                job.study_instance_uid,
                job.version,
                exc,
            )
            self._audit(
                job,
                Outcome.SERIOUS_FAILURE,
                f"dead letter: analysis version {job.version}: {exc} ({decision.reason})",
            )
        elif decision.gives_up:
            logger.error(
                "analysis of study %s gave up after %d attempt(s): %s",
                job.study_instance_uid,
                job.attempts,
                type(exc).__name__,
            )
            self._audit(
                job,
                Outcome.SERIOUS_FAILURE,
                f"analysis version {job.version} failed: {type(exc).__name__}",
            )
        else:
            logger.warning(
                "analysis of study %s failed (%s); retry at %s",
                job.study_instance_uid,
                type(exc).__name__,
                decision.retry_at.isoformat(timespec="seconds") if decision.retry_at else "never",
            )
