"""DICOM TLS on the Storage SCP: the handshake runs in the connection's own thread, never in
the accept loop.

pynetdicom wraps each accepted socket in the accept loop, so one client that connects and
says nothing holds every other caller until it gives up. Here the accept loop only accepts;
each connection's thread reads its first byte (a plain DICOM request to the TLS port is told
apart from a TLS hello and refused by name), runs the handshake against a hard deadline, and
hands pynetdicom a secured socket or drops the connection with a log line and a security
audit record naming the reason. Which peer a certificate belongs to is decided later, when
the association request names its calling AE title (node.dicom.access).
"""

from __future__ import annotations

import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Collection
from typing import Any

from pynetdicom import AE
from pynetdicom.transport import ThreadedAssociationServer

from node.config import Settings
from node.dicom.admission import Admission, BoundedRequestHandler
from node.tls import certificate_names, site_tls

logger = logging.getLogger(__name__)

TLS_HANDSHAKE_RECORD = 0x16
# OpenSSL's reasons for a failed handshake, in words a site's IT reads in the log.
REASONS = {
    "UNSUPPORTED_PROTOCOL": "TLS version below 1.2 offered",
    "WRONG_VERSION_NUMBER": "TLS version below 1.2 offered",
    "TLSV1_ALERT_PROTOCOL_VERSION": "TLS version below 1.2 offered",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "client presented no certificate",
    "NO_SHARED_CIPHER": "no BCP 195 cipher suite offered (ECDHE with AES-GCM)",
    "NO_SUITABLE_SIGNATURE_ALGORITHM": "no acceptable signature algorithm offered",
    "TLSV1_ALERT_UNKNOWN_CA": "the client does not trust the node's certificate (unknown CA)",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the client did not accept the node's certificate",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "the client finds the node's certificate expired",
}
Refused = Callable[[str, str], None]  # (peer address, reason): the security audit


def plain_ports(settings: Settings) -> tuple[int, ...]:
    """Plain DICOM ports beside the TLS one."""
    return (settings.tls.plain_port,) if settings.tls.plain_port else ()


def gate_for(settings: Settings, refused: Refused | None) -> TLSGate | None:
    """The Storage SCP's gate as configured (None: plain DICOM on the port)."""
    tls = site_tls(settings)
    if tls is None:
        return None
    timeout = settings.tls.handshake_timeout_s
    return TLSGate(tls.dicom_server, timeout, refused, plain_ports(settings))


def transport(settings: Settings) -> str:
    """How the DICOM port speaks, for the start-up log."""
    if not settings.tls.enabled:
        return " (plain DICOM, no TLS)"
    plain = settings.tls.plain_port
    return " over DICOM TLS" + (f", plain DICOM on port {plain}" if plain else "")


class HandshakeRefused(Exception):
    """A connection that did not become a TLS session; its message is the reason."""


def refusal_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"client certificate not accepted: {exc.verify_message}"
    reason = getattr(exc, "reason", None)
    if reason in REASONS:
        return REASONS[str(reason)]
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {reason or exc}"
    return f"TLS handshake failed: {type(exc).__name__}"


class TLSGate:
    """Turns an accepted connection into a TLS session, or refuses it."""

    def __init__(
        self,
        context: Callable[[], ssl.SSLContext],
        timeout_s: float,
        refused: Refused | None = None,
        plain_ports: Collection[int] = (),
    ) -> None:
        self.context = context  # called per connection: a reloaded certificate applies
        self.timeout_s = timeout_s
        self.refused = refused
        self.plain_ports = frozenset(plain_ports)

    def secure(self, sock: socket.socket, address: str) -> socket.socket | None:
        """The TLS socket (or ``sock`` itself when it came to a plain port); None when the
        connection was refused, in which case it is closed."""
        try:
            if sock.getsockname()[1] in self.plain_ports:
                return sock
        except OSError:
            sock.close()
            return None
        deadline = time.monotonic() + self.timeout_s
        try:
            return _handshake(sock, self.context(), deadline)
        except HandshakeRefused as exc:
            self._refuse(address, str(exc))
        except TimeoutError:
            self._refuse(address, f"no TLS handshake within {self.timeout_s:g} s")
        except ConnectionError:
            logger.debug("connection from %s closed before the TLS handshake", address)
        except (ssl.SSLError, OSError) as exc:
            self._refuse(address, refusal_reason(exc))
        sock.close()
        return None

    def _refuse(self, address: str, reason: str) -> None:
        logger.warning("refused TLS connection from %s: %s", address, reason)
        if self.refused is not None:
            self.refused(address, reason)


def _wait(sock: socket.socket, deadline: float, *, write: bool = False) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    readable, writable, _ = select.select(
        [] if write else [sock], [sock] if write else [], [], remaining
    )
    if not readable and not writable:
        raise TimeoutError


def _handshake(raw: socket.socket, context: ssl.SSLContext, deadline: float) -> ssl.SSLSocket:
    raw.setblocking(False)
    _wait(raw, deadline)
    first = raw.recv(1, socket.MSG_PEEK)
    if not first:
        raise ConnectionResetError
    if first[0] != TLS_HANDSHAKE_RECORD:
        raise HandshakeRefused("plain (not TLS) connection to the TLS port")
    tls = context.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
    try:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                _wait(tls, deadline)
            except ssl.SSLWantWriteError:
                _wait(tls, deadline, write=True)
    except BaseException:
        tls.close()
        raise
    tls.setblocking(True)
    return tls


def peer_certificate(assoc: Any) -> tuple[str, ...] | None:
    """The names on the certificate the association's peer presented: None over plain
    TCP, empty over TLS without a client certificate."""
    sock = getattr(getattr(getattr(assoc, "dul", None), "socket", None), "socket", None)
    if not isinstance(sock, ssl.SSLSocket):
        return None
    try:
        certificate = sock.getpeercert()
    except (OSError, ValueError):
        return ()
    return certificate_names(certificate) if certificate else ()


class GatedServer(ThreadedAssociationServer):
    """A pynetdicom server whose TLS handshakes run in each connection's thread.

    pynetdicom's own ``ssl_context`` stays unset, so its accept loop never wraps a socket.
    """

    daemon_threads = True  # a handshake still waiting does not hold up shut-down
    request_queue_size = 128  # socketserver's 5 drops a burst's connection attempts

    def __init__(
        self,
        *args: Any,
        gate: TLSGate | None = None,
        admission: Admission | None = None,
        **kwargs: Any,
    ) -> None:
        self.gate = gate
        self.admission = admission
        if admission is not None:
            kwargs.setdefault("request_handler", BoundedRequestHandler)
        super().__init__(*args, **kwargs)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        if self.gate is not None:
            try:
                secured = self.gate.secure(request, str(client_address[0]))
            except Exception as exc:  # a bug here must not leave the connection counted
                logger.error("TLS gate failed on a connection: %s", type(exc).__name__)
                request.close()
                secured = None
            if secured is None:
                self.connection_dropped()
                return
            request = secured
        admission = None if isinstance(request, ssl.SSLSocket) else self.admission
        if admission is not None and not admission.screen(request, str(client_address[0])):
            self.connection_dropped()
            return
        super().process_request_thread(request, client_address)

    def connection_dropped(self) -> None:
        """A connection ended before it became an association (the hand-over counts it)."""


def start_gated_server(
    ae: AE,
    address: tuple[str, int],
    handlers: list[Any],
    gate: TLSGate | None,
    admission: Admission | None = None,
    server_class: type[GatedServer] = GatedServer,
    **kwargs: Any,
) -> ThreadedAssociationServer:
    """Serve in a background thread, as ``AE.start_server(block=False)`` does."""
    server = ae.make_server(
        address,
        evt_handlers=handlers,
        server_class=server_class,
        gate=gate,
        admission=admission,
        **kwargs,
    )
    thread = threading.Thread(target=server.serve_forever, name=server_class.__name__)
    thread.daemon = True
    thread.start()
    ae._servers.append(server)  # as start_server does, so server.shutdown() finds it
    return server
