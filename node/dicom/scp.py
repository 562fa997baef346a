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
from pynetdicom.transport import ThreadedAssociationServer

from node.audit.associations import AssociationAudit
from node.config import NodeSettings
from node.dicom.access import PeerPolicy
from node.dicom.ingest import Ingestor, StoreRequest
from node.dicom.sop_classes import ACCEPTED_STORAGE, ACCEPTED_TRANSFER_SYNTAXES, VERIFICATION
from node.dicom.spool import discard_partial_transfer, spool_error
from node.dicom.status import StoreStatus

logger = logging.getLogger(__name__)

# A-ASSOCIATE-RJ: rejected-permanent, by the service user, calling AE title not recognised.
REJECT_UNKNOWN_CALLER = (0x01, 0x01, 0x03)


def quiet_libraries() -> None:
    """Keep data set contents (identifiers, patient data) out of the libraries' logging.

    pynetdicom's standard handlers dump identifiers; pydicom's read-time value validation
    warns with the offending value. We store bytes as received and validate nothing on the
    way in, so both are switched off.
    """
    pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE
    _config.LOG_HANDLER_LEVEL = "none"
    _config.LOG_REQUEST_IDENTIFIERS = False
    _config.LOG_RESPONSE_IDENTIFIERS = False


# Starts the association server another way than listening on the port itself (the
# supervisor's connection hand-over); given the AE, the address and the event handlers.
ServerStarter = Callable[
    [AE, tuple[str, int], list[evt.EventHandlerType]], ThreadedAssociationServer
]


class StorageSCP:
    def __init__(
        self,
        node: NodeSettings,
        ingestor: Ingestor,
        policy: PeerPolicy,
        serve: ServerStarter | None = None,
        association_closed: Callable[[], None] | None = None,
        audit: AssociationAudit | None = None,
    ) -> None:
        self.settings = node
        self.ingestor = ingestor
        self.policy = policy
        self.serve = serve
        self.association_closed = association_closed  # the supervisor counts open ones
        self.audit = audit
        self.server: ThreadedAssociationServer | None = None
        quiet_libraries()

    def _application_entity(self) -> AE:
        ae = AE(ae_title=self.settings.ae_title)
        ae.require_called_aet = True
        ae.maximum_pdu_size = self.settings.max_pdu_length
        ae.maximum_associations = self.settings.max_associations
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
            (evt.EVT_ABORTED, self._on_aborted),
            (evt.EVT_CONN_CLOSE, self._on_closed),
        ]
        address = (self.settings.host, self.settings.port)
        ae = self._application_entity()
        if self.serve is not None:
            server = self.serve(ae, address, handlers)
        else:
            started = ae.start_server(address, block=False, evt_handlers=handlers)
            assert started is not None  # block=False always returns the server
            server = started
        self.server = server
        host, port = server.server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None

    def _on_requested(self, event: Any) -> None:
        assoc = event.assoc
        calling_ae = str(assoc.requestor.primitive.calling_ae_title).strip()
        address = str(assoc.requestor.address)
        if self.policy.allows(calling_ae, address):
            return
        logger.warning(
            "rejected association from AE %r at %s: not a configured peer", calling_ae, address
        )
        if self.audit is not None:
            self.audit.rejected(calling_ae, address)
        assoc.acse.send_reject(*REJECT_UNKNOWN_CALLER)
        evt.trigger(assoc, evt.EVT_REJECTED, {})
        assoc.kill()

    @staticmethod
    def _on_established(event: Any) -> None:
        requestor = event.assoc.requestor
        logger.info(
            "association accepted from AE %r at %s:%s",
            str(requestor.ae_title).strip(),
            requestor.address,
            requestor.port,
        )

    @staticmethod
    def _on_echo(event: Any) -> int:
        return int(StoreStatus.SUCCESS)

    def _on_store(self, event: Any) -> int:
        try:
            request = StoreRequest(
                spooled=event.dataset_path,
                sop_class_uid=str(event.request.AffectedSOPClassUID),
                sop_instance_uid=str(event.request.AffectedSOPInstanceUID),
                calling_ae=str(event.assoc.requestor.ae_title).strip(),
                peer_address=str(event.assoc.requestor.address),
                spool_error=spool_error(event.request),
            )
        except Exception as exc:
            logger.error("malformed C-STORE request: %s", type(exc).__name__)
            return int(StoreStatus.PROCESSING_FAILURE)
        result = self.ingestor.ingest(request)
        header = result.header
        if self.audit is not None and header is not None:
            stored = (
                header.patient,
                header.study.study_instance_uid,
                header.instance.sop_class_uid,
            )
            self.audit.received(id(event.assoc), request.calling_ae, request.peer_address, stored)
        return int(result.status)

    @staticmethod
    def _on_aborted(event: Any) -> None:
        if not event.assoc.is_rejected:
            logger.warning("association with %s aborted", event.assoc.requestor.address)

    def _on_closed(self, event: Any) -> None:
        try:
            discard_partial_transfer(event.assoc)
        except Exception as exc:
            logger.error("could not remove a partial spool file: %s", type(exc).__name__)
        if self.audit is not None:
            self.audit.closed(id(event.assoc))
        if self.association_closed is not None:
            self.association_closed()
