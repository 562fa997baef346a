"""The structural check of a spooled C-STORE data set, run before anything is stored.

pynetdicom spools a data set as a Part 10 file: a zero preamble, "DICM", File Meta
Information it writes itself from the command's SOP Class and Instance UIDs and the
presentation context's transfer syntax, then the data set's bytes exactly as they arrived.
The check walks those bytes once, forward, in the negotiated transfer syntax, and refuses
what a reader would misread or what is not what the command and the context announced.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from node.config import ValidationSettings
from node.dicom.sop_classes import ACCEPTED_STORAGE, VERIFICATION
from node.dicom.structure.elements import UNDEFINED, Encoding, Walker
from node.dicom.structure.errors import NotItsClass, StructureBroken
from node.dicom.structure.pixels import EncapsulatedCheck, Image, check_native
from node.dicom.structure.source import FileSource, InflateSource, Source
from node.dicom.uids import uid_problem, unpadded

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
DEFLATED = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"
NATIVE = {IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN, DEFLATED, EXPLICIT_VR_BIG_ENDIAN}

SOP_CLASS, SOP_INSTANCE = 0x00080016, 0x00080018
STUDY, SERIES, FRAME_OF_REFERENCE = 0x0020000D, 0x0020000E, 0x00200052
SAMPLES, PHOTOMETRIC, FRAMES = 0x00280002, 0x00280004, 0x00280008
ROWS, COLUMNS, BITS_ALLOCATED = 0x00280010, 0x00280011, 0x00280100
EXTENDED_OFFSET_TABLE = 0x7FE00001
IDENTIFYING = {
    SOP_CLASS: "SOP Class UID",
    SOP_INSTANCE: "SOP Instance UID",
    STUDY: "Study Instance UID",
    SERIES: "Series Instance UID",
    FRAME_OF_REFERENCE: "Frame of Reference UID",
}
WANTED = frozenset(
    {*IDENTIFYING, SAMPLES, PHOTOMETRIC, FRAMES, ROWS, COLUMNS, BITS_ALLOCATED}
    | {EXTENDED_OFFSET_TABLE}
)
REQUIRED = (SOP_CLASS, SOP_INSTANCE, STUDY, SERIES)


@dataclass(frozen=True)
class Limits:
    max_depth: int = 32
    max_inflated_bytes: int = 1 << 30
    inflate_seconds: float = 60.0

    @classmethod
    def configured(cls, validation: ValidationSettings) -> Limits:
        """The ``[validation]`` section's limits."""
        return cls(
            validation.max_sequence_depth,
            validation.max_inflated_bytes,
            validation.inflate_timeout_s,
        )


@dataclass(frozen=True)
class Announced:
    """What the C-STORE command and its presentation context say the data set is."""

    sop_class_uid: str
    sop_instance_uid: str
    context_class_uid: str  # the presentation context's abstract syntax
    transfer_syntax_uid: str  # the presentation context's transfer syntax


@dataclass(frozen=True)
class Checked:
    elements: int  # elements, items and fragments walked
    fragments: int
    # a deflated data set's header (up to Pixel Data) inflated, for the header reader, which
    # would otherwise inflate the whole object in memory; None for the other syntaxes
    inflated_header: bytes | None = None


def check_announced(announced: Announced) -> None:
    """What can be refused before the data set is read: a data set on the Verification (or
    any non-storage) context, a command whose SOP class is not its context's (an unknown
    SOP class among them) or whose instance UID is not a UID."""
    context = announced.context_class_uid
    if context not in ACCEPTED_STORAGE:
        name = "the Verification" if context == VERIFICATION else "a non-storage"
        raise NotItsClass(f"a data set sent on {name} presentation context")
    if announced.sop_class_uid != context:
        raise NotItsClass("the command's SOP Class UID is not its presentation context's")
    problem = uid_problem(announced.sop_instance_uid)
    if problem:
        raise NotItsClass(f"the command's Affected SOP Instance UID {problem}")


def check_structure(path: Path, announced: Announced, limits: Limits = Limits()) -> Checked:
    """Refuse with :class:`StructureBroken` (0xC000) or :class:`NotItsClass` (0xA900)."""
    check_announced(announced)
    syntax = announced.transfer_syntax_uid
    with path.open("rb") as handle:
        start = _data_set_start(handle.read(144))
        size = path.stat().st_size
        source: Source
        inflate: InflateSource | None = None
        if syntax == DEFLATED:
            inflate = InflateSource(
                handle, start, limits.max_inflated_bytes, limits.inflate_seconds, capture=True
            )
            source = inflate
        else:
            source = FileSource(handle, start, size)
        encoding = Encoding(
            implicit=syntax == IMPLICIT_VR_LITTLE_ENDIAN, little=syntax != EXPLICIT_VR_BIG_ENDIAN
        )
        walker = Walker(source, encoding, limits.max_depth, WANTED)
        encapsulated: list[EncapsulatedCheck] = []
        if syntax not in NATIVE:

            def read_encapsulated(source: Source, encoding: Encoding) -> None:
                check = EncapsulatedCheck(
                    syntax, _image(walker.values, encoding), _extended_offsets(walker.values)
                )
                encapsulated.append(check)
                check(source, encoding)

            walker.encapsulated = read_encapsulated
        header_end: list[int] = []

        def at_pixel_data(start: int) -> None:
            header_end.append(start)
            if inflate is not None:
                inflate.stop_capture()  # the header is all the reader needs

        walker.on_pixel_data = at_pixel_data
        walker.walk()
        if inflate is not None:
            inflate.finish()
    _check_identity(walker.values, announced)
    _check_pixel_data(walker, syntax, encoding)
    header = None
    if inflate is not None:
        header = bytes(inflate.captured[: header_end[0]] if header_end else inflate.captured)
    fragments = encapsulated[0].fragments if encapsulated else 0
    return Checked(walker.count, fragments, header)


def _data_set_start(head: bytes) -> int:
    """Where the data set begins: after the preamble, "DICM" and the File Meta Information
    pynetdicom wrote, whose group length (0002,0000) comes first. (Group 0002 elements a
    peer put at the start of its data set lie after that length; the walk refuses them.)"""
    if head[128:132] != b"DICM" or head[132:138] != b"\x02\x00\x00\x00UL":
        raise StructureBroken("the spooled file has no File Meta Information group length")
    return 144 + int.from_bytes(head[140:144], "little")


def _text(values: dict[int, bytes], tag: int) -> str | None:
    raw = values.get(tag)
    if raw is None:
        return None
    return unpadded(raw) if raw else ""


def _check_identity(values: dict[int, bytes], announced: Announced) -> None:
    for tag in REQUIRED:
        if not _text(values, tag):
            raise NotItsClass(f"the data set has no {IDENTIFYING[tag]}")
    for tag, name in IDENTIFYING.items():
        value = _text(values, tag)
        problem = uid_problem(value) if value is not None else None
        if problem:
            raise NotItsClass(f"the data set's {name} {problem}")
    if _text(values, SOP_CLASS) != announced.sop_class_uid:
        raise NotItsClass("the data set's SOP Class UID differs from the command's")
    if _text(values, SOP_INSTANCE) != announced.sop_instance_uid:
        raise NotItsClass("the data set's SOP Instance UID differs from the command's")


def _number(values: dict[int, bytes], tag: int, encoding: Encoding, name: str) -> int | None:
    raw = values.get(tag)
    if raw is None or raw == b"":
        return None
    if tag == FRAMES:  # IS: text
        try:
            return int(raw.decode("ascii").strip(" \x00"))
        except (UnicodeDecodeError, ValueError):
            raise NotItsClass(f"{name} is not an integer") from None
    if len(raw) != 2:
        raise NotItsClass(f"{name} is not one US value")
    return int(struct.unpack(encoding.order + "H", raw)[0])


def _image(values: dict[int, bytes], encoding: Encoding) -> Image:
    """The image attributes, all required when there is Pixel Data (PS3.3 C.7.6.3)."""
    rows = _number(values, ROWS, encoding, "Rows")
    columns = _number(values, COLUMNS, encoding, "Columns")
    samples = _number(values, SAMPLES, encoding, "Samples per Pixel")
    bits = _number(values, BITS_ALLOCATED, encoding, "Bits Allocated")
    frames = _number(values, FRAMES, encoding, "Number of Frames")
    if rows is None or columns is None or samples is None or bits is None:
        raise NotItsClass("Pixel Data without Rows, Columns, Samples per Pixel and Bits Allocated")
    if rows == 0 or columns == 0 or samples not in (1, 3) or bits not in (1, 8, 16, 32, 64):
        raise NotItsClass("Rows, Columns, Samples per Pixel or Bits Allocated out of range")
    if frames is not None and frames < 1:
        raise NotItsClass("Number of Frames is not positive")
    photometric = _text(values, PHOTOMETRIC) or ""
    return Image(rows, columns, samples, bits, frames or 1, photometric.strip())


def _extended_offsets(values: dict[int, bytes]) -> tuple[int, ...] | None:
    raw = values.get(EXTENDED_OFFSET_TABLE)
    if raw is None:
        return None
    return struct.unpack(f"<{len(raw) // 8}Q", raw)


def _check_pixel_data(walker: Walker, syntax: str, encoding: Encoding) -> None:
    element = walker.pixel_data
    if element is None:
        raise NotItsClass("the data set has no Pixel Data, which its SOP class requires")
    if syntax in NATIVE:
        if element.length == UNDEFINED:
            raise StructureBroken("encapsulated Pixel Data in a native transfer syntax")
        check_native(_image(walker.values, encoding), element.length)
    elif element.length != UNDEFINED:
        raise StructureBroken("native Pixel Data in an encapsulated transfer syntax")
