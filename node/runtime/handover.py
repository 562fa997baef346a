"""Receiver side of connection hand-over: associations arrive as sockets from the supervisor.

The supervisor owns the listening port, accepts each TCP connection and passes the socket
(SCM_RIGHTS over a Unix socket pair) to the receiver process with the fewest open
associations. Here a pynetdicom server takes its "accepted" sockets from that pair instead
of a listening socket, so everything after accept() is pynetdicom's own code path (with the
TLS handshake, when configured, in the connection's thread: node.dicom.tls). One byte goes
back per closed connection, which is how the supervisor counts the load.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

from pynetdicom import AE
from pynetdicom.transport import ThreadedAssociationServer

from node.dicom.admission import Admission
from node.dicom.tls import GatedServer, TLSGate, start_gated_server

logger = logging.getLogger(__name__)

CLOSED = b"c"
READY = b"r"


class HandoverChannel:
    """The receiver's end of the socket pair: receive connections, report closures."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._lock = threading.Lock()

    def receive(self) -> socket.socket:
        _, fds, _, _ = socket.recv_fds(self.sock, 1, 1)
        if not fds:
            raise ConnectionError("the supervisor closed the hand-over channel")
        return socket.socket(fileno=fds[0])

    def report_closed(self) -> None:
        self._report(CLOSED)

    def report_ready(self) -> None:
        self._report(READY)

    def _report(self, message: bytes) -> None:
        with self._lock:
            try:
                self.sock.sendall(message)
            except OSError:
                logger.debug("could not report %r to the supervisor", message)


class HandedOverServer(GatedServer):
    """An association server that never listens; it waits on the hand-over channel."""

    def __init__(self, *args: Any, channel: HandoverChannel, **kwargs: Any) -> None:
        self.channel = channel
        super().__init__(*args, **kwargs)

    def server_bind(self) -> None:  # the supervisor holds the port
        pass

    def server_activate(self) -> None:
        pass

    def fileno(self) -> int:  # serve_forever() selects on this: the channel, not a port
        return self.channel.sock.fileno()

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        client = self.channel.receive()
        try:
            address = client.getpeername()
            client.settimeout(None)
        except OSError:
            client.close()
            self.channel.report_closed()
            raise
        return client, (str(address[0]), int(address[1]))

    def connection_dropped(self) -> None:  # refused before it became an association
        self.channel.report_closed()


def start_handover_server(
    ae: AE,
    address: tuple[str, int],
    handlers: list[Any],
    gate: TLSGate | None,
    admission: Admission | None = None,
    *,
    channel: HandoverChannel,
) -> ThreadedAssociationServer:
    return start_gated_server(
        ae, address, handlers, gate, admission, server_class=HandedOverServer, channel=channel
    )
