"""A minimal DICOM Storage SCU on a plain socket: the PDUs of PS3.8 written by hand, so a test
can send any bytes as a data set, with any command UIDs, on any presentation context, as a
hostile or broken peer would. (pynetdicom's own SCU validates and re-encodes what it sends.)
Many C-STOREs share one association; an aborted or closed association is reported as such.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass

APPLICATION_CONTEXT = b"1.2.840.10008.3.1.1.1"
IMPLEMENTATION_CLASS = b"1.2.826.0.1.3680043.9.7433.99.1"
OUR_MAX_PDU = 1 << 16
ABORTED = -1  # what ``store`` answers when the peer aborts or drops the association


class AssociationRefused(Exception):
    pass


class AssociationGone(Exception):
    """The peer sent an A-ABORT or closed the connection."""


def _item(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", kind, 0, len(payload)) + payload


def _pdu(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BBL", kind, 0, len(payload)) + payload


def _ae(title: str) -> bytes:
    return title.encode("ascii").ljust(16)


def _element(group: int, number: int, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\x00"
    return struct.pack("<HHL", group, number, len(value)) + value


def store_command(sop_class: bytes, sop_instance: bytes, message_id: int) -> bytes:
    """A C-STORE-RQ command set, implicit VR little endian, group length first."""
    body = b"".join(
        (
            _element(0, 0x0002, sop_class),
            _element(0, 0x0100, struct.pack("<H", 0x0001)),
            _element(0, 0x0110, struct.pack("<H", message_id & 0xFFFF)),
            _element(0, 0x0700, struct.pack("<H", 0)),
            _element(0, 0x0800, struct.pack("<H", 0x0000)),
            _element(0, 0x1000, sop_instance),
        )
    )
    return _element(0, 0x0000, struct.pack("<L", len(body))) + body


def _status(command: bytes) -> int:
    at = 0
    while at + 8 <= len(command):
        group, number, length = struct.unpack("<HHL", command[at : at + 8])
        if (group, number) == (0, 0x0900):
            return int(struct.unpack("<H", command[at + 8 : at + 10])[0])
        at += 8 + length
    raise AssociationGone("a response without a status")


@dataclass
class RawAssociation:
    sock: socket.socket
    contexts: dict[int, tuple[str, str]]  # accepted id -> (abstract syntax, transfer syntax)
    max_pdu: int
    message_id: int = 0

    def context_for(self, abstract: str, syntax: str) -> int:
        for number, accepted in self.contexts.items():
            if accepted == (abstract, syntax):
                return number
        raise KeyError(f"no accepted context for {abstract} in {syntax}")

    def store(self, context_id: int, sop_class: bytes, sop_instance: bytes, data: bytes) -> int:
        """Send one C-STORE with ``data`` as its data set; the status, or ABORTED."""
        self.message_id += 1
        command = store_command(sop_class, sop_instance, self.message_id)
        try:
            self._send_pdv(context_id, command, is_command=True)
            self._send_pdv(context_id, data, is_command=False)
            return _status(self._receive_command())
        except (AssociationGone, OSError):
            self.close()
            return ABORTED

    def _send_pdv(self, context_id: int, data: bytes, is_command: bool) -> None:
        room = max(self.max_pdu - 6, 16) if self.max_pdu else len(data) or 1
        pieces = [data[at : at + room] for at in range(0, len(data), room)] or [b""]
        for number, piece in enumerate(pieces):
            control = (1 if is_command else 0) | (2 if number == len(pieces) - 1 else 0)
            pdv = struct.pack(">LBB", len(piece) + 2, context_id, control) + piece
            self.sock.sendall(_pdu(0x04, pdv))

    def _read_pdu(self) -> tuple[int, bytes]:
        head = _exactly(self.sock, 6)
        kind, _, length = struct.unpack(">BBL", head)
        return kind, _exactly(self.sock, length)

    def _receive_command(self) -> bytes:
        command = b""
        while True:
            kind, body = self._read_pdu()
            if kind != 0x04:
                raise AssociationGone(f"PDU type {kind:#04x} instead of P-DATA")
            at = 0
            while at < len(body):
                (length,) = struct.unpack(">L", body[at : at + 4])
                control = body[at + 5]
                command += body[at + 6 : at + 4 + length]
                at += 4 + length
                if control & 0x03 == 0x03:
                    return command

    def release(self) -> None:
        try:
            self.sock.sendall(_pdu(0x05, b"\x00" * 4))
            self._read_pdu()
        except (OSError, AssociationGone):
            pass
        self.close()

    def close(self) -> None:
        self.sock.close()

    @property
    def closed(self) -> bool:
        return self.sock.fileno() == -1


def _exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise AssociationGone("connection closed")
        data += chunk
    return data


def associate(
    host: str,
    port: int,
    contexts: Sequence[tuple[str, Sequence[str]]],
    calling: str = "RAWSCU",
    called: str = "BREASTNODE",
    timeout: float = 20.0,
) -> RawAssociation:
    """Propose ``contexts`` ((abstract syntax, transfer syntaxes), ids 1, 3, 5...)."""
    items = [_item(0x10, APPLICATION_CONTEXT)]
    for number, (abstract, syntaxes) in enumerate(contexts):
        sub = _item(0x30, abstract.encode()) + b"".join(_item(0x40, s.encode()) for s in syntaxes)
        items.append(_item(0x20, struct.pack(">BBBB", 2 * number + 1, 0, 0, 0) + sub))
    user = _item(0x51, struct.pack(">L", OUR_MAX_PDU)) + _item(0x52, IMPLEMENTATION_CLASS)
    items.append(_item(0x50, user))
    header = struct.pack(">HH", 1, 0) + _ae(called) + _ae(calling) + b"\x00" * 32
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small PDUs, sent at once
    sock.sendall(_pdu(0x01, header + b"".join(items)))
    association = RawAssociation(sock, {}, 0)
    kind, body = association._read_pdu()
    if kind != 0x02:
        sock.close()
        raise AssociationRefused(f"PDU type {kind:#04x} instead of A-ASSOCIATE-AC")
    proposed = {2 * n + 1: abstract for n, (abstract, _) in enumerate(contexts)}
    at = 68
    while at + 4 <= len(body):
        kind, _, length = struct.unpack(">BBH", body[at : at + 4])
        value = body[at + 4 : at + 4 + length]
        if kind == 0x21 and value[2] == 0:
            syntax = value[8 : 8 + struct.unpack(">H", value[6:8])[0]].decode().rstrip("\x00")
            association.contexts[value[0]] = (proposed[value[0]], syntax)
        elif kind == 0x50:
            sub = 0
            while sub + 4 <= len(value):
                sub_kind, _, sub_length = struct.unpack(">BBH", value[sub : sub + 4])
                if sub_kind == 0x51:
                    (association.max_pdu,) = struct.unpack(">L", value[sub + 4 : sub + 8])
                sub += 4 + sub_length
        at += 4 + length
    return association
