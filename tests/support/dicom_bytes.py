"""Data sets as bytes, for tests that break them on purpose: encode a pydicom data set in a
transfer syntax, list its top-level elements with their offsets, and write single elements,
items and delimiters by hand (so a test can write what pydicom would refuse to)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydicom import config as pydicom_config
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
DEFLATED = "1.2.840.10008.1.2.1.99"
BIG_ENDIAN = "1.2.840.10008.1.2.2"
LONG_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"}
UNDEFINED = 0xFFFFFFFF


def encode(ds: Dataset, implicit: bool = False, little: bool = True) -> bytes:
    """The data set's bytes (no file meta) as a C-STORE carries them."""
    buffer = DicomBytesIO()
    buffer.is_little_endian = little
    buffer.is_implicit_VR = implicit
    write_dataset(buffer, ds)
    return buffer.getvalue()


def deflate(data: bytes) -> bytes:
    """PS3.5 A.5: raw deflate, padded to even length."""
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    out = packer.compress(data) + packer.flush()
    return out + b"\x00" if len(out) % 2 else out


def element(tag: int, vr: str, value: bytes, implicit: bool = False, pad: bytes = b"\x00") -> bytes:
    """One element, little endian; ``value`` padded to even length with ``pad``."""
    if len(value) % 2:
        value += pad
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF)
    if implicit:
        return head + struct.pack("<L", len(value)) + value
    if vr in LONG_VRS:
        return head + vr.encode() + b"\x00\x00" + struct.pack("<L", len(value)) + value
    return head + vr.encode() + struct.pack("<H", len(value)) + value


def header(tag: int, vr: str, length: int, implicit: bool = False) -> bytes:
    """An element's header alone (a sequence or Pixel Data of undefined length)."""
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF)
    if implicit:
        return head + struct.pack("<L", length)
    if vr in LONG_VRS:
        return head + vr.encode() + b"\x00\x00" + struct.pack("<L", length)
    return head + vr.encode() + struct.pack("<H", length)


def item(content: bytes, length: int | None = None) -> bytes:
    return struct.pack("<HHL", 0xFFFE, 0xE000, len(content) if length is None else length) + (
        content
    )


ITEM_END = struct.pack("<HHL", 0xFFFE, 0xE00D, 0)
SEQUENCE_END = struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)


@dataclass(frozen=True)
class Placed:
    """A top-level element of an encoded data set."""

    tag: int
    vr: str
    start: int  # offset of its tag
    value: int  # offset of its value
    length: int  # its length field (UNDEFINED for an encapsulated Pixel Data)
    end: int  # offset after it (after the sequence delimiter for undefined lengths)

    @property
    def length_field(self) -> tuple[int, int]:
        """(offset, size) of the length field."""
        if not self.vr:  # implicit VR
            return self.start + 4, 4
        size = 2 if self.value - self.start == 8 and self.vr not in LONG_VRS else 4
        return self.value - size, size


def top_level(data: bytes, implicit: bool = False, little: bool = True) -> list[Placed]:
    """The top-level elements of well-formed ``data`` (sequences of undefined length and
    encapsulated Pixel Data are skipped to their delimiters)."""
    order = "<" if little else ">"
    found: list[Placed] = []
    at = 0
    while at < len(data):
        group, number = struct.unpack(order + "HH", data[at : at + 4])
        tag = (group << 16) | number
        if implicit:
            vr, (length,), value = "", struct.unpack(order + "L", data[at + 4 : at + 8]), at + 8
        else:
            vr = data[at + 4 : at + 6].decode()
            if vr in LONG_VRS:
                (length,), value = struct.unpack(order + "L", data[at + 8 : at + 12]), at + 12
            else:
                (length,), value = struct.unpack(order + "H", data[at + 6 : at + 8]), at + 8
        end = value + length if length != UNDEFINED else _after_delimiter(data, value, order)
        found.append(Placed(tag, vr, at, value, length, end))
        at = end
    return found


def _after_delimiter(data: bytes, at: int, order: str) -> int:
    """Past the sequence delimiter closing what starts at ``at`` (items of defined length)."""
    while True:
        group, number, length = struct.unpack(order + "HHL", data[at : at + 8])
        if (group, number) == (0xFFFE, 0xE0DD):
            return at + 8
        at += 8 + length


def find(placed: list[Placed], tag: int) -> Placed:
    return next(p for p in placed if p.tag == tag)


def replace(data: bytes, placed: Placed, new: bytes) -> bytes:
    return data[: placed.start] + new + data[placed.end :]


def insert_before(data: bytes, placed: Placed, new: bytes) -> bytes:
    return data[: placed.start] + new + data[placed.start :]


def insert_sorted(data: bytes, elements: list[Placed], tag: int, new: bytes) -> bytes:
    """``new`` (an element of ``tag``) where ascending tag order puts it."""
    after = next((p for p in elements if p.tag > tag), None)
    return data + new if after is None else insert_before(data, after, new)


def with_length(data: bytes, placed: Placed, length: int) -> bytes:
    """The data with ``placed``'s length field set to ``length``."""
    at, size = placed.length_field
    return data[:at] + struct.pack("<H" if size == 2 else "<L", length) + data[at + size :]


def spool_file(path: Path, data: bytes, syntax: str) -> Path:
    """``data`` as pynetdicom spools a received data set: a zero preamble, "DICM", File Meta
    Information with its group length first, then the data set's bytes as they came."""
    meta = element(0x00020010, "UI", syntax.encode())
    length = element(0x00020000, "UL", struct.pack("<L", len(meta)))
    path.write_bytes(b"\x00" * 128 + b"DICM" + length + meta + data)
    return path


@contextmanager
def unvalidated() -> Iterator[None]:
    """Build data sets with values pydicom would warn about (and log, quoting them)."""
    settings = pydicom_config.settings
    saved = settings.reading_validation_mode, settings.writing_validation_mode
    settings.reading_validation_mode = settings.writing_validation_mode = pydicom_config.IGNORE
    try:
        yield
    finally:
        settings.reading_validation_mode, settings.writing_validation_mode = saved
