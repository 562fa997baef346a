"""Delivery of result objects to PACS by C-STORE, from the persistent outbox.

Every outcome is sorted into success, transient (retry with back-off: peer down, timed out,
transient reject, 0xA7xx, abort) or permanent (dead letter: permanent reject, 0xA9xx, 0xCxxx,
SOP class not supported, not authorised). The retry decision itself is the pure
``node.pipeline.retry.decide``.
"""

from __future__ import annotations

import functools
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from pydicom.filereader import read_file_meta_info
from pynetdicom import AE, _config

from node.config import NodeSettings, PeerSettings, Settings
from node.dicom.scp import quiet_libraries
from node.errors import ConfigError
from node.pipeline.audit import Auditor, Outcome, StudyObject, instances_sent
from node.pipeline.lease import heartbeat
from node.pipeline.retry import Failure, RetryPolicy, decide
from storage.filestore import FileStore
from storage.outbox import DeliveryView, Outbox
from storage.times import utcnow

logger = logging.getLogger(__name__)

PERMANENT_STATUSES = {0x0122, 0x0124}  # SOP class not supported, not authorised


@dataclass(frozen=True)
class SendOutcome:
    status: int | None
    failure: Failure | None
    detail: str

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


def send_file(
    node: NodeSettings, peer: PeerSettings, path: Path, sop_class_uid: str, timeout_s: float
) -> SendOutcome:
    """One association, one C-STORE of the file as stored (streamed from disk)."""
    if peer.port is None:
        return SendOutcome(None, Failure.PERMANENT, f"peer {peer.name} has no port")
    quiet_libraries()
    _config.STORE_SEND_CHUNKED_DATASET = True
    ae = AE(ae_title=node.ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    ae.connection_timeout = timeout_s
    try:
        syntax = str(read_file_meta_info(path).TransferSyntaxUID)
    except (OSError, AttributeError, ValueError) as exc:
        return SendOutcome(None, Failure.TRANSIENT, f"cannot read the stored object: {exc}")
    # Sent as stored, so exactly its own transfer syntax is proposed.
    ae.add_requested_context(sop_class_uid, syntax)
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title)
    if not assoc.is_established:
        if assoc.is_rejected:
            result = getattr(assoc.acceptor.primitive, "result", None)
            kind = Failure.PERMANENT if result == 0x01 else Failure.TRANSIENT
            return SendOutcome(None, kind, f"association rejected ({kind.value})")
        return SendOutcome(None, Failure.TRANSIENT, "peer unreachable, timed out or aborted")
    try:
        try:
            response = assoc.send_c_store(path)
        except ValueError as exc:  # the peer accepted no context for this SOP class
            return SendOutcome(None, Failure.PERMANENT, f"not accepted by the peer: {exc}")
        if "Status" not in response:
            return SendOutcome(None, Failure.TRANSIENT, "no response (aborted or timed out)")
        status = int(response.Status)
        failure = classify_status(status)
        detail = "stored" if failure is None else f"status 0x{status:04X}"
        return SendOutcome(status, failure, detail)
    finally:
        if assoc.is_established:
            assoc.release()


class DeliverySender:
    """Takes due rows from the outbox and sends them; one row at a time."""

    def __init__(
        self,
        settings: Settings,
        outbox: Outbox,
        store: FileStore,
        worker_id: str,
        policy: RetryPolicy,
        rng: random.Random | None = None,
        auditor: Auditor | None = None,
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.store = store
        self.worker_id = worker_id
        self.policy = policy
        self.rng = rng or random.Random()
        self.auditor = auditor

    def run_once(self, now: datetime | None = None) -> DeliveryView | None:
        """Send one due delivery; returns it, or None when nothing is due."""
        lease = timedelta(seconds=self.settings.pipeline.lease_seconds)
        delivery = self.outbox.claim(self.worker_id, lease, now or utcnow())
        if delivery is None:
            return None
        try:
            peer = self.settings.peer(delivery.destination)
        except ConfigError:
            outcome = SendOutcome(
                None,
                Failure.PERMANENT,
                f"destination {delivery.destination!r} is not a configured peer",
            )
        else:
            beat = functools.partial(self._extend, delivery.id, lease)
            with heartbeat(beat, lease.total_seconds() / 3, f"delivery {delivery.id}"):
                outcome = send_file(
                    self.settings.node,
                    peer,
                    self.store.path_of(delivery.file_path),
                    delivery.sop_class_uid,
                    self.settings.delivery.timeout_s,
                )
        self._record(delivery, outcome)
        return delivery

    def _extend(self, delivery_id: int, lease: timedelta) -> None:
        self.outbox.heartbeat(delivery_id, self.worker_id, lease, utcnow())

    def _record(self, delivery: DeliveryView, outcome: SendOutcome) -> None:
        now = utcnow()
        if outcome.delivered:
            self.outbox.delivered(delivery.id, self.worker_id, outcome.status or 0, now)
            logger.info(
                "delivered %s to %s (attempt %d)",
                delivery.sop_instance_uid,
                delivery.destination,
                delivery.attempts,
            )
            self._audit(delivery, Outcome.SUCCESS, "stored by the destination")
            return
        assert outcome.failure is not None
        decision = decide(
            outcome.failure,
            delivery.attempts,
            delivery.first_attempt_at or now,
            now,
            self.policy,
            self.rng,
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
