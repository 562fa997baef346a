"""Pixel Data against the image attributes, without decoding a pixel.

Native syntaxes: the value holds exactly what Rows x Columns x Samples per Pixel x Bits
Allocated x Number of Frames require (PS3.5 8.1.1, 8.2: 1-bit data packed, YBR_FULL_422
subsampled, one pad byte to even length). Encapsulated syntaxes (PS3.5 A.4): a Basic Offset
Table item, fragment items of defined length, the sequence delimiter; frames located by the
Basic or Extended Offset Table (offsets increasing, each the start of a fragment, one per
frame) or, without one, one fragment per frame or by their start markers; each frame's first
fragment starts as its syntax says (JPEG SOI and the SOF of its process, JPEG-LS SOF55,
JPEG 2000 SOC and SIZ or a JP2 signature box, JPEG XL, RLE's 64-byte header with one segment
per byte of a sample). Entropy-coded data is not looked into.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass, field

from node.dicom.structure.elements import (
    ITEM,
    SEQUENCE_END,
    UNDEFINED,
    Encoding,
)
from node.dicom.structure.errors import StructureBroken
from node.dicom.structure.source import Source

MAX_OFFSET_TABLE = 4 << 20  # 4 bytes a frame: a million frames
HEAD = 12  # bytes of each fragment's start kept to recognise a frame's start
MAX_SEGMENTS = 64  # JPEG marker segments before the frame header

JPEG_DCT = ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51")
JPEG_LOSSLESS = ("1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70")
JPEG_LS = ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81")
JPEG_2000 = (
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.92",
    "1.2.840.10008.1.2.4.93",
    "1.2.840.10008.1.2.4.201",
    "1.2.840.10008.1.2.4.202",
    "1.2.840.10008.1.2.4.203",
)
JPEG_XL = ("1.2.840.10008.1.2.4.110", "1.2.840.10008.1.2.4.111", "1.2.840.10008.1.2.4.112")
RLE = "1.2.840.10008.1.2.5"
ENCAPSULATED_UNCOMPRESSED = "1.2.840.10008.1.2.1.98"

# The frame header (SOF) each JPEG process may use.
SOF_OF = {syntax: {0xC0, 0xC1} for syntax in JPEG_DCT}
SOF_OF |= {syntax: {0xC3} for syntax in JPEG_LOSSLESS}
SOF_OF |= {syntax: {0xF7} for syntax in JPEG_LS}
ANY_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}
STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM, RSTn: no length
JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
JXL_SIGNATURE = b"\x00\x00\x00\x0cJXL \r\n\x87\n"


@dataclass(frozen=True)
class Image:
    """The Image Pixel attributes the lengths follow from."""

    rows: int
    columns: int
    samples: int
    bits_allocated: int
    frames: int
    photometric: str

    def frame_bits(self) -> int:
        samples = 2 if self.photometric == "YBR_FULL_422" else self.samples
        return self.rows * self.columns * samples * self.bits_allocated

    def native_length(self) -> int:
        return (self.frame_bits() * self.frames + 7) // 8


def check_native(image: Image, length: int) -> None:
    expected = image.native_length()
    if length == expected or (expected % 2 and length == expected + 1):
        return
    raise StructureBroken(
        f"Pixel Data holds {length} bytes; Rows, Columns, Samples per Pixel, Bits Allocated "
        f"and Number of Frames require {expected}"
    )


@dataclass
class EncapsulatedCheck:
    """Reads an encapsulated Pixel Data value, fragment by fragment, checking as it goes;
    only the offset table and a count are kept, however many fragments."""

    syntax: str
    image: Image
    extended_offsets: tuple[int, ...] | None = None  # from (7FE0,0001), when present
    starts: set[int] = field(default_factory=set)  # offsets of frame starts from a table
    found: int = 0  # frame starts seen
    fragments: int = 0

    def __call__(self, source: Source, encoding: Encoding) -> None:
        table = self._offset_table(source, encoding)
        if table and self.extended_offsets is not None:
            raise StructureBroken("both a Basic and an Extended Offset Table")
        offsets = table or self.extended_offsets
        if offsets is not None and len(offsets) > 0:
            self._check_table(offsets)
        first = source.position
        while True:
            tag, length = _item(source, encoding)
            if tag == SEQUENCE_END:
                if length != 0:
                    raise StructureBroken("a misplaced sequence delimiter in Pixel Data")
                break
            if tag != ITEM or length == UNDEFINED:
                raise StructureBroken("encapsulated Pixel Data holds something but fragments")
            self._fragment(source, length, source.position - 8 - first, bool(offsets))
        self._check_count(bool(offsets))

    def _offset_table(self, source: Source, encoding: Encoding) -> tuple[int, ...]:
        tag, length = _item(source, encoding)
        if tag != ITEM or length == UNDEFINED or length % 4 or length > MAX_OFFSET_TABLE:
            raise StructureBroken("encapsulated Pixel Data does not start with an offset table")
        return struct.unpack(f"<{length // 4}L", source.read(length))

    def _check_table(self, offsets: tuple[int, ...]) -> None:
        if len(offsets) != self.image.frames:
            raise StructureBroken(
                f"the offset table has {len(offsets)} entries for {self.image.frames} frame(s)"
            )
        if offsets[0] != 0 or any(b <= a for a, b in itertools.pairwise(offsets)):
            raise StructureBroken("the offset table's offsets do not start at 0 and increase")
        self.starts = set(offsets)

    def _fragment(self, source: Source, length: int, offset: int, tabled: bool) -> None:
        self.fragments += 1
        if self.fragments > 1_000_000:
            raise StructureBroken("encapsulated Pixel Data holds more than a million fragments")
        if tabled:
            starts_frame = offset in self.starts
        elif self.image.frames == 1 or self.syntax in (RLE, ENCAPSULATED_UNCOMPRESSED):
            starts_frame = self.fragments == 1 or self.image.frames > 1
        else:
            starts_frame = self.fragments == 1 or self._looks_like_start(source, length)
        if starts_frame:
            self.found += 1
            used = self._frame_start(source, length)
        else:
            used = 0
        source.skip(length - used)

    def _check_count(self, tabled: bool) -> None:
        if self.fragments == 0:
            raise StructureBroken("encapsulated Pixel Data holds no fragment")
        if self.found != self.image.frames:
            where = "the offset table's offsets" if tabled else "frame starts"
            raise StructureBroken(
                f"{self.found} {where} found in the fragments for {self.image.frames} frame(s)"
            )

    def _looks_like_start(self, source: Source, length: int) -> bool:
        """Without an offset table, a later fragment starts a frame when it starts with the
        syntax's marker; nothing is consumed (the start is read again if it is one)."""
        return length >= 2 and _marker_start(self.syntax, source.peek(min(length, HEAD)))

    def _frame_start(self, source: Source, length: int) -> int:
        """Check a frame's first fragment; returns the bytes of it consumed."""
        syntax = self.syntax
        if syntax == RLE:
            return _check_rle(source, length, self.image)
        if syntax == ENCAPSULATED_UNCOMPRESSED:
            frame = (self.image.frame_bits() + 7) // 8
            if length not in (frame, frame + 1):
                raise StructureBroken(f"a frame fragment holds {length} bytes, not {frame}")
            return 0
        if syntax in SOF_OF:
            return _check_jpeg(source, length, SOF_OF[syntax])
        head = source.read(min(length, HEAD))
        if not _marker_start(syntax, head):
            raise StructureBroken("a frame does not start with its transfer syntax's marker")
        return len(head)


def _item(source: Source, encoding: Encoding) -> tuple[int, int]:
    group, number, length = struct.unpack(encoding.order + "HHL", source.read(8))
    return (group << 16) | number, length


def _marker_start(syntax: str, head: bytes) -> bool:
    if syntax in SOF_OF:
        return head.startswith(b"\xff\xd8")
    if syntax in JPEG_2000:
        return head.startswith(b"\xff\x4f\xff\x51") or head.startswith(JP2_SIGNATURE)
    if syntax in JPEG_XL:
        return head.startswith(b"\xff\x0a") or head.startswith(JXL_SIGNATURE)
    return False


def _check_jpeg(source: Source, length: int, allowed: set[int]) -> int:
    """SOI, then marker segments up to the frame header, whose type must be the process's."""
    if length < 4 or source.read(2) != b"\xff\xd8":
        raise StructureBroken("a JPEG frame does not start with SOI (FFD8)")
    used = 2
    for _ in range(MAX_SEGMENTS):
        if used + 2 > length:
            break
        prefix, marker = source.read(2)
        used += 2
        while marker == 0xFF and used < length:  # fill bytes before a marker
            marker = source.read(1)[0]
            used += 1
        if prefix != 0xFF:
            break
        if marker in allowed:
            return used
        if marker in ANY_SOF:
            raise StructureBroken(
                f"a JPEG frame header SOF (FF{marker:02X}) its transfer syntax does not allow"
            )
        if marker in STANDALONE or marker in (0xD8, 0xD9, 0xDA):
            break  # image data, or its end, before any frame header
        if used + 2 > length:
            break
        (size,) = struct.unpack(">H", source.read(2))
        used += 2
        if size < 2 or used + size - 2 > length:
            break
        source.skip(size - 2)
        used += size - 2
    raise StructureBroken("a JPEG frame has no frame header (SOF) where its syntax needs one")


def _check_rle(source: Source, length: int, image: Image) -> int:
    """PS3.5 G.4: 16 little-endian offsets; the first the segment count, one segment per
    byte of each sample; segments start at 64 and follow each other inside the fragment."""
    if length < 64:
        raise StructureBroken("an RLE frame is shorter than its 64-byte header")
    header = struct.unpack("<16L", source.read(64))
    count, offsets = header[0], header[1:]
    expected = image.samples * ((image.bits_allocated + 7) // 8)
    if count != expected:
        raise StructureBroken(f"an RLE frame has {count} segment(s), not {expected}")
    used = offsets[:count]
    if used[0] != 64 or any(b <= a for a, b in itertools.pairwise(used)):
        raise StructureBroken("an RLE frame's segment offsets do not start at 64 and increase")
    if used[-1] >= length or any(offsets[count:]):
        raise StructureBroken("an RLE frame's segment offsets lie outside its fragment")
    return 64
