"""The Storage and Verification SCP: pynetdicom wiring around the Ingestor.

Handlers are short and never raise: a bug becomes a failure status, never a dead
association or a dead node. Associations are accepted only from configured peers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pydicom import config as pydicom_config
from pynetdicom import AE, _config, evt
from pynetdicom.dimse_primitives import C_ECHO
from pynetdicom.presentation import negotiate_as_acceptor
from pynetdicom.transport import ThreadedAssociationServer

from node.audit.associations import AssociationAudit
from node.config import NodeSettings
from node.dicom.access import PeerPolicy
from node.dicom.admission import Admission
from node.dicom.association_limits import REJECT_LOCAL_LIMIT, AssociationLimits
from node.dicom.ingest import Ingestor, StoreRequest
from node.dicom.sop_classes import ACCEPTED_STORAGE, ACCEPTED_TRANSFER_SYNTAXES, VERIFICATION
from node.dicom.spool import discard_partial_transfer, discard_unserved, spool_error
from node.dicom.status import StoreStatus
from node.dicom.tls import TLSGate, peer_certificate, start_gated_server
from node.printable import printable

logger = logging.getLogger(__name__)

# A-ASSOCIATE-RJ: rejected-permanent, by the service user, calling / called AE title not
# recognised.
REJECT_UNKNOWN_CALLER = (0x01, 0x01, 0x03)
REJECT_UNKNOWN_CALLED = (0x01, 0x01, 0x07)
REJECT_NO_REASON = (0x01, 0x01, 0x01)  # nothing proposed that we could accept
# pynetdicom's own count is only a backstop: AssociationLimits decides, and says why.
BACKSTOP_FACTOR = 4


def quiet_libraries() -> None:
    """Keep data set contents (identifiers, patient data) out of the libraries' logging.

    pynetdicom's standard handlers dump identifiers; pydicom's read-time value validation
    warns with the offending value. We store bytes as received and validate nothing on the
    way in, so both are switched off.
    """
    pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE
    pydicom_config.settings.writing_validation_mode = pydicom_config.IGNORE
    _config.LOG_HANDLER_LEVEL = "none"
    _config.LOG_REQUEST_IDENTIFIERS = False
    _config.LOG_RESPONSE_IDENTIFIERS = False


def let_the_check_decide() -> None:
    """pynetdicom drops, without a status, a C-STORE whose command holds a UID over 64
    characters: the node's structural check refuses it with 0xA900 instead, as it refuses
    every other invalid UID (node.dicom.structure)."""
    _config.VALIDATORS["UI"] = lambda _uid: (True, "")


# Starts the association server another way than listening on the port itself (the
# supervisor's connection hand-over); given the AE, the address, the event handlers and
# the TLS gate (None: plain DICOM).
ServerStarter = Callable[
    [AE, tuple[str, int], list[evt.EventHandlerType], TLSGate | None, Admission | None],
    ThreadedAssociationServer,
]


def acceptable_contexts(assoc: Any) -> bool:
    """Whether any proposed presentation context would be accepted (pynetdicom would accept
    the association with every context rejected, and the peer is left to give up)."""
    proposed = assoc.requestor.primitive.presentation_context_definition_list
    result, _ = negotiate_as_acceptor(proposed, assoc.acceptor.supported_contexts, {})
    return any(cx.result == 0x00 for cx in result)


class StorageSCP:
    def __init__(
        self,
        node: NodeSettings,
        ingestor: Ingestor,
        policy: PeerPolicy,
        serve: ServerStarter | None = None,
        association_closed: Callable[[], None] | None = None,
        audit: AssociationAudit | None = None,
        tls: TLSGate | None = None,
    ) -> None:
        self.settings = node
        self.ingestor = ingestor
        self.policy = policy
        self.serve = serve
        self.association_closed = association_closed  # the supervisor counts open ones
        self.audit = audit
        self.tls = tls  # None: plain DICOM on the port
        self.server: ThreadedAssociationServer | None = None
        self.plain_servers: list[ThreadedAssociationServer] = []
        self.limits = AssociationLimits(node.max_associations, node.max_associations_per_peer)
        self.admission = Admission(
            node.association_request_timeout_s,
            node.max_association_request_bytes,
            node.max_pdu_length,
            audit.connection_refused if audit is not None else None,
            node.max_object_bytes,
        )
        quiet_libraries()
        let_the_check_decide()

    def _application_entity(self) -> AE:
        ae = AE(ae_title=self.settings.ae_title)
        ae.require_called_aet = True
        ae.maximum_pdu_size = self.settings.max_pdu_length
        ae.maximum_associations = BACKSTOP_FACTOR * self.settings.max_associations
        ae.acse_timeout = self.settings.acse_timeout_s
        ae.dimse_timeout = self.settings.dimse_timeout_s
        ae.network_timeout = self.settings.network_timeout_s
        ae.add_supported_context(VERIFICATION)
        for sop_class in ACCEPTED_STORAGE:
            ae.add_supported_context(sop_class, list(ACCEPTED_TRANSFER_SYNTAXES))
        return ae

    def start(self) -> tuple[str, int]:
        """Start listening in background threads; returns the bound (host, port)."""
        handlers: list[evt.EventHandlerType] = [
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_ESTABLISHED, self._on_established),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_DIMSE_RECV, self._on_message),
            (evt.EVT_ABORTED, self._on_aborted),
            (evt.EVT_CONN_CLOSE, self._on_closed),
        ]
        address = (self.settings.host, self.settings.port)
        ae = self._application_entity()
        if self.serve is not None:
            server = self.serve(ae, address, handlers, self.tls, self.admission)
        else:
            server = start_gated_server(ae, address, handlers, self.tls, self.admission)
            for port in self.tls.plain_ports if self.tls else ():  # beside the TLS port
                plain = (self.settings.host, port)
                self.plain_servers.append(
                    start_gated_server(ae, plain, handlers, None, self.admission)
                )
        self.server = server
        host, port = server.server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        for server in self.plain_servers:
            server.shutdown()
        self.plain_servers = []
        if self.server is not None:
            self.server.shutdown()
            self.server = None

    def _on_requested(self, event: Any) -> None:
        assoc = event.assoc
        calling_ae = str(assoc.requestor.primitive.calling_ae_title).strip()
        address = str(assoc.requestor.address)
        called_ae = str(assoc.requestor.primitive.called_ae_title).strip()
        refusal: str | None = None
        if called_ae != self.settings.ae_title:
            refusal, reject = f"called AE title {called_ae!r} is not ours", REJECT_UNKNOWN_CALLED
        elif refusal := self.policy.refusal(calling_ae, address, peer_certificate(assoc)):
            reject = REJECT_UNKNOWN_CALLER
        elif not acceptable_contexts(assoc):
            refusal, reject = "no acceptable presentation context proposed", REJECT_NO_REASON
        elif limit := self.limits.admit(id(assoc), address):
            refusal, reject = f"local limit exceeded: {limit}", REJECT_LOCAL_LIMIT
        if refusal is None:
            return
        logger.warning(
            "rejected association from AE '%s' at %s: %s", printable(calling_ae), address, refusal
        )
        if self.audit is not None:
            self.audit.rejected(calling_ae, address, refusal)
        assoc.acse.send_reject(*reject)
        evt.trigger(assoc, evt.EVT_REJECTED, {})
        assoc.kill()

    @staticmethod
    def _on_established(event: Any) -> None:
        requestor = event.assoc.requestor
        logger.info(
            "association accepted from AE %s at %s:%s",
            printable(str(requestor.ae_title).strip()),
            requestor.address,
            requestor.port,
        )

    @staticmethod
    def _on_echo(event: Any) -> int:
        if not isinstance(event.request, C_ECHO):
            # pynetdicom routes a C-STORE naming the Verification SOP class here: no C-ECHO
            # answer for it (its data set is discarded, node.dicom.spool.discard_unserved)
            logger.warning("a C-STORE naming the Verification SOP class: association aborted")
            event.assoc.abort()
        return int(StoreStatus.SUCCESS)

    def _on_store(self, event: Any) -> int:
        try:
            request = StoreRequest(
                spooled=event.dataset_path,
                sop_class_uid=str(event.request.AffectedSOPClassUID),
                sop_instance_uid=str(event.request.AffectedSOPInstanceUID),
                calling_ae=str(event.assoc.requestor.ae_title).strip(),
                peer_address=str(event.assoc.requestor.address),
                context_class_uid=str(event.context.abstract_syntax),
                transfer_syntax_uid=str(event.context.transfer_syntax),
                spool_error=spool_error(event.request),
            )
        except Exception as exc:
            logger.error("malformed C-STORE request: %s", type(exc).__name__)
            self._store_failed(event, StoreStatus.PROCESSING_FAILURE)
            return int(StoreStatus.PROCESSING_FAILURE)
        result = self.ingestor.ingest(request)
        if not result.status.is_success:
            self._store_failed(event, result.status, request.sop_instance_uid, result.reason)
        header = result.header
        if self.audit is not None and header is not None:
            stored = (
                header.patient,
                header.study.study_instance_uid,
                header.instance.sop_class_uid,
            )
            self.audit.received(id(event.assoc), request.calling_ae, request.peer_address, stored)
        return int(result.status)

    def _store_failed(
        self, event: Any, status: int, sop_instance_uid: str = "", reason: str | None = None
    ) -> None:
        """Every failure status is audited (the Ingestor has logged why)."""
        if self.audit is None:
            return
        try:
            requestor = event.assoc.requestor
            self.audit.store_failed(
                str(requestor.ae_title).strip(),
                str(requestor.address),
                sop_instance_uid,
                int(status),
                reason or "",
            )
        except Exception as exc:  # the status is answered whatever the audit does
            logger.error("could not audit a failed store: %s", type(exc).__name__)

    @staticmethod
    def _on_message(event: Any) -> None:
        try:
            discard_unserved(event.message)
        except Exception as exc:
            logger.error("could not remove an unserved spool file: %s", type(exc).__name__)

    @staticmethod
    def _on_aborted(event: Any) -> None:
        if not event.assoc.is_rejected:
            logger.warning("association with %s aborted", event.assoc.requestor.address)

    def _on_closed(self, event: Any) -> None:
        self.limits.release(id(event.assoc))
        try:
            discard_partial_transfer(event.assoc)
        except Exception as exc:
            logger.error("could not remove a partial spool file: %s", type(exc).__name__)
        if self.audit is not None:
            self.audit.closed(id(event.assoc))
        if self.association_closed is not None:
            self.association_closed()
