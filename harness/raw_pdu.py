"""A raw-socket DICOM client that sends what no well-behaved library would: PDUs built by
hand (PS3.8 9.3), cut short, oversized or of unknown type, and reads what comes back."""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass

APPLICATION_CONTEXT = b"1.2.840.10008.3.1.1.1"
VERIFICATION = b"1.2.840.10008.1.1"
IMPLICIT_VR_LE = b"1.2.840.10008.1.2"

A_ASSOCIATE_RQ = 0x01
A_ASSOCIATE_AC = 0x02
A_ASSOCIATE_RJ = 0x03
P_DATA_TF = 0x04
A_ABORT = 0x07


def _item(item_type: int, value: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(value)) + value


def pdu(pdu_type: int, body: bytes, *, length: int | None = None) -> bytes:
    """A PDU; ``length`` overrides the length field (a lie about the body)."""
    return struct.pack(">BBL", pdu_type, 0, len(body) if length is None else length) + body


def associate_rq(
    called: str, calling: str, abstract_syntax: bytes = VERIFICATION, max_pdu: int = 16384
) -> bytes:
    """An A-ASSOCIATE-RQ with one presentation context (implicit VR little endian)."""
    context = (
        struct.pack(">BBBB", 1, 0, 0, 0)
        + _item(0x30, abstract_syntax)
        + _item(0x40, IMPLICIT_VR_LE)
    )
    user = _item(0x51, struct.pack(">L", max_pdu)) + _item(0x52, b"1.2.3.4")
    body = (
        struct.pack(">HH", 1, 0)
        + called.encode().ljust(16)
        + calling.encode().ljust(16)
        + bytes(32)
        + _item(0x10, APPLICATION_CONTEXT)
        + _item(0x20, context)
        + _item(0x50, user)
    )
    return pdu(A_ASSOCIATE_RQ, body)


@dataclass(frozen=True)
class Answer:
    """What the peer did: the first PDU's type (None: it closed without one) and, for a
    rejection, (result, source, reason); for an abort, (source, reason)."""

    pdu_type: int | None
    fields: tuple[int, ...] = ()
    seconds: float = 0.0

    @property
    def words(self) -> str:
        names = {
            A_ASSOCIATE_AC: "A-ASSOCIATE-AC",
            A_ASSOCIATE_RJ: "A-ASSOCIATE-RJ",
            A_ABORT: "A-ABORT",
            None: "connection closed",
        }
        name = names.get(self.pdu_type, f"PDU 0x{self.pdu_type or 0:02X}")
        return f"{name} {self.fields}" if self.fields else name


def connect(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_answer(sock: socket.socket, timeout: float = 10.0) -> Answer:
    """The first PDU the peer sends, or None when it closes without one."""
    started = time.monotonic()
    sock.settimeout(timeout)
    header = _read(sock, 6)
    if len(header) < 6:
        return Answer(None, seconds=time.monotonic() - started)
    pdu_type, _, length = struct.unpack(">BBL", header)
    body = _read(sock, min(length, 1 << 16))
    seconds = time.monotonic() - started
    if pdu_type == A_ASSOCIATE_RJ and len(body) >= 4:
        return Answer(pdu_type, (body[1], body[2], body[3]), seconds)
    if pdu_type == A_ABORT and len(body) >= 4:
        return Answer(pdu_type, (body[2], body[3]), seconds)
    return Answer(pdu_type, seconds=seconds)


def _read(sock: socket.socket, count: int) -> bytes:
    data = bytearray()
    while len(data) < count:
        try:
            chunk = sock.recv(count - len(data))
        except (ConnectionResetError, BrokenPipeError):
            break
        if not chunk:
            break
        data += chunk
    return bytes(data)


def send_and_answer(port: int, *parts: bytes, close_after: bool = False) -> Answer:
    """Send ``parts`` on a new connection (closing our side after them when asked) and
    return the peer's answer."""
    with connect(port) as sock:
        try:
            for part in parts:
                sock.sendall(part)
            if close_after:
                sock.shutdown(socket.SHUT_WR)
        except (ConnectionResetError, BrokenPipeError):
            return Answer(None)
        return read_answer(sock)
