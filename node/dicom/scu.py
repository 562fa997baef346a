"""Outgoing associations: C-ECHO, and C-STORE of stored objects, several over one association.

A batch of objects (the results of one study for one destination) is sent over one
association. Each object's SOP class is proposed once per transfer syntax it may go in, each
syntax in its own presentation context, so the peer accepts or rejects every syntax on its own
and the node then picks, per object, the first of its preferences the peer accepted.
A peer with ``tls = true`` is called over TLS (node.tls's client context: its certificate
must chain to the CA bundle and carry the peer's certificate name).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Generator, Sequence
from pathlib import Path

from pydicom.uid import UID
from pynetdicom import AE, _config
from pynetdicom.association import Association

from node.config import NodeSettings, PeerSettings
from node.dicom.scp import quiet_libraries
from node.dicom.sop_classes import VERIFICATION
from node.dicom.transfer_syntaxes import EncodingError, StoredObject, encoded, inspect
from node.errors import PeerError
from node.sending import Sender, StoreOutcome, Unsent
from node.tls import handshake_failure

logger = logging.getLogger(__name__)

LOST = "association ended before this object was sent"
NO_RESPONSE = "no response (aborted or timed out)"
MAX_CONTEXTS = 128  # PS3.8 9.3.2.2: presentation context IDs are the odd numbers 1-255
# The node's client TLS context (node.tls.SiteTLS.client), called per association.
ClientTLS = Callable[[], ssl.SSLContext]


def _tls_args(peer: PeerSettings, tls: ClientTLS | None) -> tuple[ssl.SSLContext, str] | None:
    if not peer.tls:
        return None
    if tls is None:
        raise PeerError(f"peer {peer.name!r} is called over TLS, but [tls] is not configured")
    handshake_failure(peer.identity)  # forget an earlier attempt's
    return tls(), peer.identity


def _tls_failure(peer: PeerSettings) -> str | None:
    """Why the TLS handshake with the peer failed, when it did."""
    return handshake_failure(peer.identity) if peer.tls else None


def echo(
    node: NodeSettings, peer: PeerSettings, timeout_s: float = 10.0, tls: ClientTLS | None = None
) -> int:
    """C-ECHO the peer; returns its status, raises PeerError when it cannot be reached."""
    if peer.port is None:
        raise PeerError(f"peer {peer.name!r} has no port configured; it cannot be called")
    quiet_libraries()
    ae = AE(ae_title=node.ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    ae.connection_timeout = timeout_s
    ae.add_requested_context(VERIFICATION)
    assoc = ae.associate(
        peer.host, peer.port, ae_title=peer.ae_title, tls_args=_tls_args(peer, tls)
    )
    if not assoc.is_established:
        reason = "rejected" if assoc.is_rejected else None
        reason = reason or _tls_failure(peer) or "unreachable or aborted"
        raise PeerError(f"association with {peer.name!r} ({peer.host}:{peer.port}): {reason}")
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    if "Status" not in status:
        raise PeerError(f"no C-ECHO response from {peer.name!r}")
    return int(status.Status)


def sender(tls: ClientTLS | None) -> Sender:
    """:func:`store` with the node's client TLS context, for the delivery."""

    def send(
        node: NodeSettings,
        peer: PeerSettings,
        paths: Sequence[Path],
        timeout_s: float,
        scratch: Path | None = None,
    ) -> Generator[StoreOutcome, None, None]:
        return store(node, peer, paths, timeout_s, scratch, tls=tls)

    return send


def store(
    node: NodeSettings,
    peer: PeerSettings,
    paths: Sequence[Path],
    timeout_s: float,
    scratch: Path | None = None,
    tls: ClientTLS | None = None,
) -> Generator[StoreOutcome, None, None]:
    """C-STORE each stored file over one association; yields one outcome per path, in order,
    as soon as it is known (so the caller records it before the next object goes). The
    association is released when the last outcome is taken or the iterator is closed.
    ``scratch``: where converted copies are written (the store's spool folder)."""
    if peer.port is None:
        for _ in paths:
            yield StoreOutcome(None, Unsent.NO_PORT, f"peer {peer.name} has no port")
        return
    objects: list[StoredObject | StoreOutcome] = []
    for path in paths:
        try:
            objects.append(inspect(path))
        except EncodingError as exc:
            objects.append(StoreOutcome(None, Unsent.UNREADABLE, str(exc)))
    readable = [o for o in objects if isinstance(o, StoredObject)]
    if not readable:
        yield from (o for o in objects if isinstance(o, StoreOutcome))
        return
    try:
        assoc = _associate(node, peer, readable, timeout_s, tls)
    except PeerError as exc:
        for item in objects:
            yield item if isinstance(item, StoreOutcome) else _unsent(Unsent.UNREACHABLE, exc)
        return
    established = assoc.is_established
    why = None if established else _tls_failure(peer)
    try:
        for message_id, item in enumerate(objects, start=1):
            if isinstance(item, StoreOutcome):
                yield item
            elif not established:
                yield _not_established(assoc, item, why)
            else:
                yield _store_one(assoc, item, message_id, scratch)
    finally:
        if assoc.is_established:
            assoc.release()


def proposed_contexts(objects: Sequence[StoredObject]) -> list[tuple[UID, UID]]:
    """(SOP class, transfer syntax) pairs, each once, in preference order; one context each."""
    contexts: list[tuple[UID, UID]] = []
    for item in objects:
        for syntax in item.proposals:
            if (item.sop_class_uid, syntax) not in contexts:
                contexts.append((item.sop_class_uid, syntax))
    if len(contexts) > MAX_CONTEXTS:
        raise ValueError(f"{len(contexts)} presentation contexts; one association takes 128")
    return contexts


def _unsent(kind: Unsent, exc: Exception) -> StoreOutcome:
    return StoreOutcome(None, kind, str(exc))


def _associate(
    node: NodeSettings,
    peer: PeerSettings,
    objects: Sequence[StoredObject],
    timeout_s: float,
    tls: ClientTLS | None,
) -> Association:
    quiet_libraries()
    _config.STORE_SEND_CHUNKED_DATASET = True  # objects sent as stored stream from disk
    ae = AE(ae_title=node.ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    ae.connection_timeout = timeout_s
    for sop_class, syntax in proposed_contexts(objects):
        ae.add_requested_context(sop_class, syntax)
    assert peer.port is not None
    return ae.associate(peer.host, peer.port, ae_title=peer.ae_title, tls_args=_tls_args(peer, tls))


def _not_established(assoc: Association, item: StoredObject, why: str | None) -> StoreOutcome:
    if assoc.is_rejected:
        result = getattr(assoc.acceptor.primitive, "result", None)
        kind = Unsent.REJECTED_PERMANENT if result == 0x01 else Unsent.REJECTED_TRANSIENT
        return StoreOutcome(None, kind, kind.value)
    if assoc.rejected_contexts and not assoc.accepted_contexts:
        # The peer accepted the association but none of its contexts; pynetdicom aborts it.
        return _context_rejected(item)
    if why:
        return StoreOutcome(None, Unsent.UNREACHABLE, f"peer unreachable: {why}")
    return StoreOutcome(None, Unsent.UNREACHABLE, "peer unreachable, timed out or aborted")


def _context_rejected(item: StoredObject) -> StoreOutcome:
    syntaxes = ", ".join(s.name for s in item.proposals)
    detail = f"presentation context rejected: {item.sop_class_uid.name} in {syntaxes}"
    return StoreOutcome(None, Unsent.CONTEXT_REJECTED, detail)


def _store_one(
    assoc: Association, item: StoredObject, message_id: int, scratch: Path | None
) -> StoreOutcome:
    if not assoc.is_established:
        return StoreOutcome(None, Unsent.ASSOCIATION_LOST, LOST)
    accepted = {(cx.abstract_syntax, cx.transfer_syntax[0]) for cx in assoc.accepted_contexts}
    syntaxes = [s for s in item.proposals if (item.sop_class_uid, s) in accepted]
    if not syntaxes:
        return _context_rejected(item)
    problems = []
    for syntax in syntaxes:
        try:
            with encoded(item, syntax, scratch) as path:
                return _send(assoc, path, message_id, syntax)
        except EncodingError as exc:  # JPEG-LS cannot take every image: try the next one
            logger.warning("%s; trying the next accepted transfer syntax", exc)
            problems.append(str(exc))
    return StoreOutcome(None, Unsent.UNENCODABLE, "; ".join(problems))


def _send(assoc: Association, path: Path, message_id: int, syntax: UID) -> StoreOutcome:
    try:
        response = assoc.send_c_store(path, msg_id=message_id)
    except RuntimeError:
        return StoreOutcome(None, Unsent.ASSOCIATION_LOST, LOST)
    except (ValueError, AttributeError) as exc:
        return StoreOutcome(None, Unsent.UNENCODABLE, f"cannot send: {exc}", syntax)
    if "Status" not in response:
        return StoreOutcome(None, Unsent.NO_RESPONSE, NO_RESPONSE, syntax)
    status = int(response.Status)
    return StoreOutcome(status, None, f"status 0x{status:04X}", syntax)
