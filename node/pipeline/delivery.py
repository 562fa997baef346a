"""Delivery of result objects to PACS by C-STORE, from the persistent outbox.

The due results of one study version go to a destination over one association (through the
sender the runtime gives it: the SCU, ``node.dicom.scu.store``), each in the best transfer
syntax the peer accepted. Every outcome is recorded per row, as soon as it is known, and
sorted into success, transient (retry
with back-off: peer down, timed out, transient reject, 0xA7xx, abort) or permanent (dead
letter: permanent reject, presentation context rejected, 0xA9xx, 0xCxxx, SOP class not
supported, not authorised). The retry decision itself is the pure
``node.pipeline.retry.decide``.
"""

from __future__ import annotations

import logging
import random
import threading
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta

from node.audit.messages import Auditor, Outcome, StudyObject, instances_sent
from node.config import Settings
from node.errors import ConfigError
from node.pipeline.lease import heartbeat
from node.pipeline.retry import Failure, RetryPolicy, decide
from node.sending import Sender, StoreOutcome, Unsent
from storage.filestore import FileStore
from storage.leases import LeaseLost
from storage.outbox import DeliveryView, Outbox
from storage.times import utcnow

logger = logging.getLogger(__name__)

PERMANENT_STATUSES = {0x0122, 0x0124}  # SOP class not supported, not authorised
# What a failure to send at all means: a peer that refuses for good, or cannot take the
# object in any syntax offered, is a configuration error; the rest may pass.
PERMANENT_UNSENT = {
    Unsent.NO_PORT,
    Unsent.REJECTED_PERMANENT,
    Unsent.CONTEXT_REJECTED,
    Unsent.UNENCODABLE,
}


@dataclass(frozen=True)
class SendOutcome:
    status: int | None
    failure: Failure | None
    detail: str
    transfer_syntax: str | None = None

    @property
    def delivered(self) -> bool:
        return self.failure is None


def classify_status(status: int) -> Failure | None:
    """None for success (0x0000, and 0xBxxx warnings: the object was stored)."""
    if status == 0x0000 or 0xB000 <= status <= 0xBFFF:
        return None
    if 0xA900 <= status <= 0xA9FF or 0xC000 <= status <= 0xCFFF or status in PERMANENT_STATUSES:
        return Failure.PERMANENT
    return Failure.TRANSIENT  # 0xA7xx out of resources, 0x0110 processing failure, unknown


def classify(outcome: StoreOutcome) -> SendOutcome:
    syntax = str(outcome.transfer_syntax) if outcome.transfer_syntax else None
    if outcome.status is not None:
        failure = classify_status(outcome.status)
        detail = "stored" if failure is None else outcome.detail
        return SendOutcome(outcome.status, failure, detail, syntax)
    assert outcome.unsent is not None
    failure = Failure.PERMANENT if outcome.unsent in PERMANENT_UNSENT else Failure.TRANSIENT
    return SendOutcome(None, failure, outcome.detail, syntax)


class DeliverySender:
    """Takes a study's due rows for one destination from the outbox and sends them over one
    association."""

    def __init__(
        self,
        settings: Settings,
        outbox: Outbox,
        store: FileStore,
        worker_id: str,
        policy: RetryPolicy,
        rng: random.Random | None = None,
        auditor: Auditor | None = None,
        *,
        send: Sender,
    ) -> None:
        self.settings = settings
        self.send = send  # the SCU (node.dicom.scu.store), given by the runtime
        self.outbox = outbox
        self.store = store
        self.worker_id = worker_id
        self.policy = policy
        self.rng = rng or random.Random()
        self.auditor = auditor

    def run_once(self, now: datetime | None = None) -> list[DeliveryView] | None:
        """Send one study's due deliveries to one destination; returns them, or None when
        nothing is due."""
        lease = timedelta(seconds=self.settings.pipeline.lease_seconds)
        batch = self.outbox.claim_study(self.worker_id, lease, now or utcnow())
        if not batch:
            return None
        retry = _Retry(self.rng.random())
        destination = batch[0].destination
        try:
            peer = self.settings.peer(destination)
        except ConfigError:
            unknown = SendOutcome(
                None, Failure.PERMANENT, f"destination {destination!r} is not a configured peer"
            )
            for delivery in batch:
                self._record(delivery, unknown, retry)
            return batch
        held = _Held({d.id for d in batch})

        def beat() -> None:
            ids = held.ids()
            if ids and not self.outbox.heartbeat_many(ids, self.worker_id, lease, utcnow()):
                raise LeaseLost(f"deliveries {sorted(ids)} are no longer held")

        paths = [self.store.path_of(d.file_path) for d in batch]
        what = f"deliveries {batch[0].id}-{batch[-1].id}"
        with heartbeat(beat, lease.total_seconds() / 3, what):
            sending = self.send(
                self.settings.node,
                peer,
                paths,
                self.settings.delivery.timeout_s,
                scratch=self.store.spool_dir,
            )
            with closing(sending) as outcomes:  # released even if recording fails
                for delivery, outcome in zip(batch, outcomes, strict=True):
                    held.drop(delivery.id)
                    self._record(delivery, classify(outcome), retry)
        return batch

    def _record(self, delivery: DeliveryView, outcome: SendOutcome, retry: _Retry) -> None:
        """Settle one row; a row lost to lease recovery is left to whoever holds it now."""
        try:
            self._settle(delivery, outcome, retry)
        except LeaseLost:
            logger.warning(
                "delivery %d was recovered by another sender mid-send; its outcome (%s) is "
                "not recorded",
                delivery.id,
                outcome.detail,
            )

    def _settle(self, delivery: DeliveryView, outcome: SendOutcome, retry: _Retry) -> None:
        if outcome.delivered:
            self.outbox.delivered(delivery.id, self.worker_id, outcome.status or 0, utcnow())
            logger.info(
                "delivered %s to %s in %s (attempt %d)",
                delivery.sop_instance_uid,
                delivery.destination,
                outcome.transfer_syntax,
                delivery.attempts,
            )
            self._audit(delivery, Outcome.SUCCESS, "stored by the destination")
            return
        assert outcome.failure is not None
        decision = decide(
            outcome.failure,
            delivery.attempts,
            delivery.first_attempt_at or retry.clock(),
            retry.clock(),
            self.policy,
            random.Random(retry.draw),
        )
        self.outbox.failed(
            delivery.id, self.worker_id, outcome.status, outcome.detail, decision.retry_at
        )
        if decision.gives_up:
            logger.error(
                "dead letter: %s to %s after %d attempt(s): %s (%s)",
                delivery.sop_instance_uid,
                delivery.destination,
                delivery.attempts,
                outcome.detail,
                decision.reason,
            )
            self._audit(
                delivery,
                Outcome.SERIOUS_FAILURE,
                f"dead letter: {outcome.detail} ({decision.reason})",
            )
        else:
            assert decision.retry_at is not None
            logger.warning(
                "delivery of %s to %s failed (%s); retry at %s",
                delivery.sop_instance_uid,
                delivery.destination,
                outcome.detail,
                decision.retry_at.isoformat(timespec="seconds"),
            )

    def _audit(self, delivery: DeliveryView, outcome: Outcome, description: str) -> None:
        if self.auditor is None:
            return
        try:
            peer = self.settings.peer(delivery.destination)
            destination_ae, address = peer.ae_title, peer.host
        except ConfigError:
            destination_ae, address = delivery.destination, ""
        self.auditor.record(
            instances_sent(
                StudyObject(delivery.study_instance_uid, {delivery.sop_class_uid: 1}),
                self.settings.node.ae_title,
                destination_ae,
                address,
                outcome,
                description,
            )
        )


class _Retry:
    """One jitter draw and one clock (the batch's first failure) for a batch: rows that fail
    together (peer down, association aborted) are due again together, so they go over one
    association again instead of drifting apart by their jitter."""

    def __init__(self, draw: float) -> None:
        self.draw = draw
        self._at: datetime | None = None

    def clock(self) -> datetime:
        if self._at is None:
            self._at = utcnow()
        return self._at


class _Held:
    """The rows of a batch not yet settled, shared with the heartbeat thread."""

    def __init__(self, ids: set[int]) -> None:
        self._ids = ids
        self._lock = threading.Lock()

    def ids(self) -> list[int]:
        with self._lock:
            return sorted(self._ids)

    def drop(self, delivery_id: int) -> None:
        with self._lock:
            self._ids.discard(delivery_id)
