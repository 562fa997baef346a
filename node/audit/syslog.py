"""Shipping the audit trail to a syslog collector as RFC 5424 messages (UDP, TCP or TLS).

DICOM PS3.15 A.5 messages travel as the MSG part (UTF-8 with BOM), MSGID "DICOM+RFC3881",
facility authpriv (10); over TCP each message is framed by octet counting (RFC 6587 3.4.1),
and over TLS the same way (RFC 5425 4.3), after the collector's certificate was checked
against the CA bundle and the collector's name (the node shows its own certificate).
A cursor row records how far the trail has been shipped, so a collector that was down gets
everything once it is back.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
from collections.abc import Callable

from node.config import AuditSettings
from storage.audit import AuditTrail, StoredAudit

logger = logging.getLogger(__name__)

FACILITY_AUTHPRIV = 10
SEVERITY_NOTICE, SEVERITY_WARNING = 5, 4
MSGID = "DICOM+RFC3881"
BOM = b"\xef\xbb\xbf"
BATCH = 500


def rfc5424(record: StoredAudit, hostname: str, app_name: str = "breastnode") -> bytes:
    severity = SEVERITY_NOTICE if record.outcome == 0 else SEVERITY_WARNING
    timestamp = record.recorded_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    header = (
        f"<{FACILITY_AUTHPRIV * 8 + severity}>1 {timestamp} {hostname} {app_name} "
        f"{os.getpid()} {MSGID} -"
    )
    return header.encode("ascii") + b" " + BOM + record.message.encode("utf-8")


def send(
    messages: list[bytes],
    settings: AuditSettings,
    timeout_s: float = 10.0,
    tls: Callable[[], ssl.SSLContext] | None = None,
) -> None:
    """``tls``: the node's client TLS context, for syslog_protocol "tls"."""
    address = (settings.syslog_host, settings.syslog_port)
    if settings.syslog_protocol == "udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for message in messages:
                sock.sendto(message, address)
        return
    with socket.create_connection(address, timeout=timeout_s) as sock:
        if settings.syslog_protocol == "tls":
            if tls is None:
                raise ValueError('syslog_protocol "tls" needs the node\'s TLS context')
            with tls().wrap_socket(sock, server_hostname=settings.syslog_host) as secured:
                _send_framed(secured, messages)
                secured.unwrap()  # close_notify: the collector knows nothing was cut off
        else:
            _send_framed(sock, messages)


def _send_framed(sock: socket.socket, messages: list[bytes]) -> None:
    for message in messages:
        sock.sendall(str(len(message)).encode("ascii") + b" " + message)


def ship(
    trail: AuditTrail,
    settings: AuditSettings,
    hostname: str | None = None,
    tls: Callable[[], ssl.SSLContext] | None = None,
) -> int:
    """Send every record not yet shipped; returns how many were sent."""
    host = hostname or socket.gethostname()
    sent = 0
    while records := trail.records(after_id=trail.shipped_through(), limit=BATCH):
        send([rfc5424(r, host) for r in records], settings, tls=tls)
        trail.mark_shipped(records[-1].id)
        sent += len(records)
    return sent
