"""Bounds on what a connection may cost before and while it is an association.

pynetdicom gives every accepted connection an association thread that counts against
``maximum_associations`` at once, then reads the first PDU with blocking reads: a peer that
sends a few bytes and then nothing holds a place for as long as it likes, and 40 of them
lock every legitimate sender out. It also reads a PDU of whatever length the header
announces into memory (0xFFFFFFFF: 4 GiB).

Here a plain connection first waits, in its own thread and before pynetdicom sees it, until
its whole A-ASSOCIATE-RQ has arrived (peeked, not read) within a deadline; a connection
that starts with another PDU type or announces a request larger than the bound is answered
with an A-ABORT and closed. Once pynetdicom reads the connection, every PDU length is
checked before anything is read: past the bound, an A-ABORT and the connection is closed.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from pynetdicom.association import Association
from pynetdicom.transport import AssociationSocket, RequestHandler

from node.dicom.object_bounds import ObjectTally

logger = logging.getLogger(__name__)

A_ASSOCIATE_RQ = 0x01
P_DATA_TF = 0x04
PDU_HEADER = struct.Struct(">BBL")
# A-ABORT, source: service provider, reason: invalid PDU parameter value (PS3.8 9.3.8).
A_ABORT_INVALID_PARAMETER = bytes((0x07, 0, 0, 0, 0, 4, 0, 0, 2, 6))
PEEK_LIMIT = 65536 + PDU_HEADER.size  # a larger request is waited for up to here only

Refused = Callable[[str, str], None]  # (peer address, reason): the security audit


@dataclass(frozen=True)
class Admission:
    """The bounds a receiver applies to each connection."""

    request_timeout_s: float
    max_request_bytes: int
    max_pdu_bytes: int  # after association (0: no bound)
    refused: Refused | None = None
    max_object_bytes: int = 0  # one data set (0: no bound)

    def refuse(self, address: str, reason: str) -> None:
        logger.warning("refused connection from %s: %s", address, reason)
        if self.refused is not None:
            try:
                self.refused(address, reason)
            except Exception as exc:  # the audit must not keep the connection alive
                logger.error("could not audit a refused connection: %s", type(exc).__name__)

    def screen(self, sock: socket.socket, address: str) -> bool:
        """Whether a plain connection sent a well-formed start of an association request
        in time; when not, it has been answered (A-ABORT) or dropped, and closed."""
        deadline = time.monotonic() + self.request_timeout_s
        try:
            header = _peek(sock, PDU_HEADER.size, deadline)
            if len(header) < PDU_HEADER.size:
                logger.debug("connection from %s closed before an association request", address)
            else:
                pdu_type, _, length = PDU_HEADER.unpack(header)
                reason = self._header_problem(pdu_type, length)
                if reason is None:
                    whole = min(PDU_HEADER.size + length, PEEK_LIMIT)
                    if len(_peek(sock, whole, deadline)) == whole:
                        return True
                    logger.debug("connection from %s closed inside its request", address)
                else:
                    _send_abort(sock)
                    self.refuse(address, reason)
        except TimeoutError:
            self.refuse(
                address, f"no complete association request within {self.request_timeout_s:g} s"
            )
        except OSError as exc:
            logger.debug("connection from %s failed: %s", address, type(exc).__name__)
        sock.close()
        return False

    def _header_problem(self, pdu_type: int, length: int) -> str | None:
        if pdu_type != A_ASSOCIATE_RQ:
            return f"PDU type 0x{pdu_type:02X} before an association request"
        if length > self.max_request_bytes:
            return (
                f"association request of {length} bytes announced (limit {self.max_request_bytes})"
            )
        return None

    def pdu_limit(self, established: bool) -> int | None:
        """The largest PDU body read from a peer (None: unbounded)."""
        if not established:
            return self.max_request_bytes
        return self.max_pdu_bytes or None


def _peek(sock: socket.socket, wanted: int, deadline: float) -> bytes:
    """The first ``wanted`` bytes, left unread; fewer when the peer closed first."""
    hang_up = select.poll()
    hang_up.register(sock, select.POLLRDHUP | select.POLLHUP)
    while True:
        try:
            data = sock.recv(wanted, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            data = b""
        if len(data) >= wanted or hang_up.poll(0):
            return data
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        if data:  # part of it is here: select would report it at once, so poll slowly
            time.sleep(min(0.05, remaining))
        else:
            select.select([sock], [], [], remaining)


def _send_abort(sock: Any) -> None:
    with contextlib.suppress(OSError):
        sock.sendall(A_ABORT_INVALID_PARAMETER)


class BoundedSocket(AssociationSocket):
    """pynetdicom's association socket, refusing to read a PDU past the bound."""

    admission: Admission
    tally: ObjectTally
    body_of: int | None  # the type of the PDU whose body is read next (None: a header)

    def recv(self, nr_bytes: int) -> bytearray:
        # pynetdicom reads each PDU as two calls: the 6-byte header, then the body.
        limit = self.admission.pdu_limit(bool(self.assoc.is_established))
        if limit is not None and nr_bytes > limit:
            self._abort(f"PDU of {nr_bytes} bytes announced (limit {limit})")
        data = super().recv(nr_bytes)
        if self.body_of is None:
            if len(data) == PDU_HEADER.size:
                self.body_of = data[0] if 0x01 <= data[0] <= 0x07 else None
            return data
        pdu_type, self.body_of = self.body_of, None
        if pdu_type == P_DATA_TF and (problem := self.tally.add(data)):
            self._abort(problem)
        return data

    def _abort(self, reason: str) -> None:
        _send_abort(self.socket)
        self.admission.refuse(str(self.assoc.requestor.address), reason)
        # pynetdicom takes this as the connection closing (Evt17) and ends the association;
        # the SCP's connection-closed handler removes the partial spool file.
        raise ConnectionAbortedError(reason)


class BoundedRequestHandler(RequestHandler):
    """Gives each association a BoundedSocket with the server's Admission."""

    def _create_association(self) -> Association:
        assoc = super()._create_association()
        # The socket pynetdicom made has already queued its "connection open" event: it is
        # kept and given the bounded read (a second socket would queue a second event).
        sock = cast(BoundedSocket, assoc.dul.socket)
        sock.__class__ = BoundedSocket
        admission: Admission = self.server.admission  # type: ignore[attr-defined]
        sock.admission = admission
        sock.tally = ObjectTally(admission.max_object_bytes)
        sock.body_of = None
        return assoc
