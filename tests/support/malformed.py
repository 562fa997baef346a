"""A generated corpus of malformed C-STORE inputs, and the status each must get.

Deterministic and small (each input a few kilobytes), every one built from a few valid,
clearly synthetic breast images (a small MG image in the native syntaxes, JPEG 2000, JPEG-LS,
JPEG baseline and RLE versions of it, a four-frame tomosynthesis-like object) and broken one
way: truncated at and inside elements and Pixel Data, garbage, lengths past the end,
undefined lengths never closed, sequences nested too deep, wrong VRs, one VR encoding sent
where the other was negotiated, pixel data shorter or longer than its attributes say, corrupt
compressed fragments and offset tables, invalid UIDs ("..", "/", NUL, 65+ characters,
non-ASCII...), data set UIDs differing from the command's, unknown SOP classes, the wrong
presentation context, deflate bombs. ``valid_controls`` are near misses that must be stored:
the check refuses what is broken, not what is merely unusual.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import cache

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from models.synthetic import (
    BREAST_TOMOSYNTHESIS,
    MG_FOR_PRESENTATION,
    MG_FOR_PROCESSING,
    MR_IMAGE,
    SyntheticPatient,
    mammogram,
)
from tests.support import dicom_bytes as db
from tests.support.raw_store import ABORTED

SUCCESS, MISMATCH, BROKEN = 0x0000, 0xA900, 0xC000
VERIFICATION = "1.2.840.10008.1.1"
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
PIXEL_DATA = 0x7FE00010
SOP_CLASS, SOP_INSTANCE = 0x00080016, 0x00080018
STUDY, SERIES, FRAME_OF_REFERENCE = 0x0020000D, 0x0020000E, 0x00200052
ROWS, COLUMNS, SAMPLES, BITS, FRAMES = 0x00280010, 0x00280011, 0x00280002, 0x00280100, 0x00280008
SOURCE_IMAGES = 0x00082112
CONTENT_SEQUENCE = 0x0040A730
SIGNATURES = 0xFFFAFFFA
CORPUS_PATIENT = SyntheticPatient(
    patient_id="SYNPIDCORPUS7", patient_name="SYNTHETIC^CORPUSQ", birth_date="19700101"
)


def uid(name: str) -> str:
    return str(generate_uid(entropy_srcs=["breastnode malformed corpus", name]))


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # the group it belongs to, for the figures
    data: bytes  # the data set as sent
    expected: int  # SUCCESS, MISMATCH, BROKEN or ABORTED
    sop_class: str  # the command's Affected SOP Class UID
    sop_instance: bytes  # the command's Affected SOP Instance UID (any bytes)
    context: str  # the presentation context's abstract syntax
    syntax: str  # and transfer syntax


@dataclass(frozen=True)
class Base:
    """A valid data set the cases are made from."""

    name: str
    data: bytes
    syntax: str
    sop_class: str
    sop_instance: str
    implicit: bool = False
    little: bool = True

    def case(self, name: str, kind: str, data: bytes, expected: int, **changes: object) -> Case:
        made = Case(
            f"{self.name}/{name}",
            kind,
            data,
            expected,
            self.sop_class,
            self.sop_instance.encode(),
            self.sop_class,
            self.syntax,
        )
        return replace(made, **changes)  # type: ignore[arg-type]

    @property
    def elements(self) -> list[db.Placed]:
        return db.top_level(self.data, self.implicit, self.little)


def image(
    name: str, rows: int = 16, columns: int = 12, sop_class: str = MG_FOR_PRESENTATION
) -> Dataset:
    """A small synthetic MG image with deterministic UIDs and a nested reference."""
    ds = mammogram(CORPUS_PATIENT, rows=rows, columns=columns, sop_class=sop_class, seed=3)
    ds.SOPInstanceUID = uid(name)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = uid("study"), uid("series")
    ds.FrameOfReferenceUID = uid("frame of reference")
    source = Dataset()
    source.ReferencedSOPClassUID = MG_FOR_PROCESSING
    source.ReferencedSOPInstanceUID = uid("source image")
    ds.SourceImageSequence = Sequence([source])
    return ds


def base(name: str, ds: Dataset, syntax: str) -> Base:
    implicit, little = syntax == db.IMPLICIT, syntax != db.BIG_ENDIAN
    if syntax == db.BIG_ENDIAN:
        ds.PixelData = ds.pixel_array.byteswap().tobytes()
    data = db.encode(ds, implicit=implicit, little=little)
    if syntax == db.DEFLATED:
        data = db.deflate(data)
    return Base(name, data, syntax, str(ds.SOPClassUID), str(ds.SOPInstanceUID), implicit, little)


def compressed(name: str, syntax: str, plugin: str = "", rows: int = 32, frames: int = 1) -> Base:
    ds = image(name, rows=rows, columns=rows)
    if frames > 1:
        pixels = ds.pixel_array
        ds.SOPClassUID = BREAST_TOMOSYNTHESIS
        ds.NumberOfFrames = frames
        ds.PixelData = np.stack([pixels + n for n in range(frames)]).tobytes()
    ds.compress(syntax, encoding_plugin=plugin, generate_instance_uid=False)
    return base(name, ds, syntax)


def jpeg_baseline(name: str) -> Base:
    """8-bit JPEG baseline (process 1), encoded by Pillow."""
    ds = image(name, rows=32, columns=32)
    pixels = (ds.pixel_array >> 6).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=95)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = encapsulate([out.getvalue()])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    return base(name, ds, JPEG_BASELINE)


@cache
def bases() -> dict[str, Base]:
    return {
        "explicit": base("explicit", image("explicit"), db.EXPLICIT),
        "implicit": base("implicit", image("implicit"), db.IMPLICIT),
        "big-endian": base("big-endian", image("big-endian"), db.BIG_ENDIAN),
        "deflated": base("deflated", image("deflated"), db.DEFLATED),
        "j2k": compressed("j2k", JPEG2000Lossless, "pylibjpeg"),
        "jpeg-ls": compressed("jpeg-ls", JPEGLSLossless, "pyjpegls"),
        "rle": compressed("rle", RLELossless),
        "jpeg": jpeg_baseline("jpeg"),
        "tomo": compressed("tomo", JPEG2000Lossless, "pylibjpeg", frames=4),
    }


def truncated() -> Iterator[Case]:
    """Cut at every top-level element boundary (what remains is well formed but lacks what
    the SOP class needs: 0xA900), inside each element's header and value, and inside Pixel
    Data (0xC000); deflate streams cut short."""
    for key in ("explicit", "implicit", "j2k", "big-endian"):
        b = bases()[key]
        for n, placed in enumerate(b.elements):
            yield b.case(f"cut before element {n}", "truncated", b.data[: placed.start], MISMATCH)
            yield b.case(f"cut in header {n}", "truncated", b.data[: placed.start + 5], BROKEN)
            if placed.length != db.UNDEFINED and placed.length >= 2:
                middle = placed.value + placed.length // 2
                yield b.case(f"cut in value {n}", "truncated", b.data[:middle], BROKEN)
        pixels = db.find(b.elements, PIXEL_DATA)
        for fraction in (0.1, 0.5, 0.9):
            cut = pixels.value + int((pixels.end - pixels.value) * fraction)
            yield b.case(f"cut in Pixel Data at {fraction}", "truncated", b.data[:cut], BROKEN)
        yield b.case("last byte missing", "truncated", b.data[:-1], BROKEN)
        yield b.case("last two bytes missing", "truncated", b.data[:-2], BROKEN)
    deflated = bases()["deflated"]
    for fraction in (0.2, 0.5, 0.8, 0.99):
        cut = int(len(deflated.data) * fraction)
        yield deflated.case(f"stream cut at {fraction}", "truncated", deflated.data[:cut], BROKEN)


def garbage() -> Iterator[Case]:
    b = bases()["explicit"]
    rng = np.random.default_rng(20260101)
    for length in (1, 2, 7, 8, 12, 100, 1000, 4096):
        for n in range(3):
            noise = rng.integers(0, 256, length, dtype=np.uint8).tobytes()
            yield b.case(f"{length} random bytes #{n}", "garbage", noise, BROKEN)
    yield b.case("empty data set", "garbage", b"", MISMATCH)
    yield b.case("zeros", "garbage", b"\x00" * 256, BROKEN)
    yield b.case("text", "garbage", b"this is not a DICOM data set " * 20, BROKEN)
    yield b.case("a Part 10 file", "garbage", b"\x00" * 128 + b"DICM" + b.data, BROKEN)
    for n in range(6):
        tail = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
        yield b.case(f"random tail #{n}", "garbage", b.data + tail, BROKEN)
    for key in ("implicit", "j2k"):
        other = bases()[key]
        tail = rng.integers(0, 256, 32, dtype=np.uint8).tobytes()
        yield other.case("random tail", "garbage", other.data + tail, BROKEN)


def lengths_past_the_end() -> Iterator[Case]:
    for key in ("explicit", "implicit"):
        b = bases()[key]
        for n, placed in enumerate(b.elements):
            if placed.length == db.UNDEFINED:
                continue
            _, size = placed.length_field
            beyond = len(b.data) - placed.value + 2
            if size == 2 and beyond > 0xFFFF:
                continue
            data = db.with_length(b.data, placed, beyond)
            yield b.case(f"element {n} past the end", "length past end", data, BROKEN)
            data = db.with_length(b.data, placed, 0xFFFE if size == 2 else 0x7FFFFFF0)
            yield b.case(f"element {n} far past the end", "length past end", data, BROKEN)
        sequence = db.find(b.elements, SOURCE_IMAGES)
        item_at = sequence.value + 4
        data = b.data[:item_at] + struct.pack("<L", 0x00FFFFF0) + b.data[item_at + 4 :]
        yield b.case("item past its sequence", "length past end", data, BROKEN)


def _undefined_source_images(implicit: bool, ending: bytes, item_end: bytes) -> bytes:
    inner = db.element(0x00081150, "UI", MG_FOR_PROCESSING.encode(), implicit)
    inner += db.element(0x00081155, "UI", uid("source image").encode(), implicit)
    head = db.header(SOURCE_IMAGES, "SQ", db.UNDEFINED, implicit)
    return head + db.item(inner, db.UNDEFINED) + item_end + ending


def never_closed() -> Iterator[Case]:
    for key in ("explicit", "implicit"):
        b = bases()[key]
        implicit = b.implicit
        # an undefined-length sequence as the last element, its delimiters left out
        sequence = db.header(SIGNATURES, "SQ", db.UNDEFINED, implicit)
        inner = db.element(0x00400000 | 0xA010, "CS", b"CONTAINS", implicit)
        cases = {
            "sequence and item never closed": sequence + db.item(inner, db.UNDEFINED),
            "sequence never closed": sequence + db.item(inner),
            "item never closed": sequence + db.item(inner, db.UNDEFINED) + db.SEQUENCE_END,
            "empty sequence never closed": sequence,
        }
        for name, tail in cases.items():
            yield b.case(name, "never closed", b.data + tail, BROKEN)
        closed = _undefined_source_images(implicit, db.SEQUENCE_END, db.ITEM_END)
        placed = db.find(b.elements, SOURCE_IMAGES)
        broken = {
            "inner sequence delimiter missing": _undefined_source_images(
                implicit, b"", db.ITEM_END
            ),
            "inner item delimiter missing": _undefined_source_images(
                implicit, db.SEQUENCE_END, b""
            ),
            "delimiter with a length": closed[:-4] + struct.pack("<L", 4) + b"\x00" * 4,
        }
        for name, new in broken.items():
            yield b.case(name, "never closed", db.replace(b.data, placed, new), BROKEN)
    for key in ("j2k", "jpeg-ls", "tomo"):
        b = bases()[key]
        yield b.case("fragments never closed", "never closed", b.data[:-8], BROKEN)


def _nested(depth: int, implicit: bool) -> bytes:
    """Content Sequences nested ``depth`` deep, each of undefined length."""
    inner = db.element(0x0040A040, "CS", b"TEXT", implicit)
    for _ in range(depth):
        sequence = db.header(CONTENT_SEQUENCE, "SQ", db.UNDEFINED, implicit)
        inner = sequence + db.item(inner, db.UNDEFINED) + db.ITEM_END + db.SEQUENCE_END
    return inner


def deeply_nested() -> Iterator[Case]:
    for key in ("explicit", "implicit"):
        b = bases()[key]
        for depth in (33, 40, 64, 200, 1000, 5000):
            nested = _nested(depth, b.implicit)
            data = db.insert_sorted(b.data, b.elements, CONTENT_SEQUENCE, nested)
            yield b.case(f"nested {depth} deep", "deep nesting", data, BROKEN)


def wrong_vrs() -> Iterator[Case]:
    b = bases()["explicit"]
    elements = b.elements
    changes = {
        ROWS: ("SS", "UL", "DS", "OW"),
        COLUMNS: ("SS", "FL", "LO"),
        BITS: ("SS", "UL", "AT"),
        SAMPLES: ("SS", "UL"),
        SOP_INSTANCE: ("LO", "SH", "UT"),
        STUDY: ("LO", "CS"),
        0x00100010: ("US", "SQ", "UL"),  # Patient's Name
        0x00080020: ("US", "UL"),  # Study Date
        0x00080060: ("US", "SQ"),  # Modality
        SOURCE_IMAGES: ("OB", "LO"),
    }
    for tag, vrs in changes.items():
        placed = db.find(elements, tag)
        value = b.data[placed.value : placed.end]
        for vr in vrs:  # UN is allowed for any element: see valid_controls
            new = db.element(tag, vr, value)
            yield b.case(f"{tag:08X} as {vr}", "wrong VR", db.replace(b.data, placed, new), BROKEN)
    for raw in (b"XX", b"ui", b"\x00\x00", b"  ", b"U\x00"):
        placed = db.find(elements, STUDY)
        data = b.data[: placed.start + 4] + raw + b.data[placed.start + 6 :]
        yield b.case(f"VR bytes {raw!r}", "wrong VR", data, BROKEN)


def encoding_mismatch() -> Iterator[Case]:
    """One VR encoding (or byte order, or compression) sent, another negotiated."""
    pairs = (
        ("implicit", db.EXPLICIT),
        ("implicit", db.BIG_ENDIAN),
        ("implicit", db.DEFLATED),
        ("explicit", db.IMPLICIT),
        ("explicit", db.BIG_ENDIAN),
        ("explicit", db.DEFLATED),
        ("big-endian", db.EXPLICIT),
        ("big-endian", db.IMPLICIT),
        ("deflated", db.EXPLICIT),
        ("deflated", db.IMPLICIT),
        ("j2k", db.EXPLICIT),
        ("j2k", db.IMPLICIT),
        ("explicit", JPEG2000Lossless),
        ("implicit", JPEG2000Lossless),
        ("jpeg", JPEG_LOSSLESS_SV1),
        ("jpeg-ls", JPEG2000Lossless),
        ("j2k", JPEGLSLossless),
        ("rle", JPEG2000Lossless),
        ("j2k", RLELossless),
    )
    for key, syntax in pairs:
        b = bases()[key]
        yield b.case(f"sent as {syntax}", "encoding mismatch", b.data, BROKEN, syntax=syntax)


def pixel_lengths() -> Iterator[Case]:
    for key in ("explicit", "implicit"):
        b = bases()[key]
        elements = b.elements
        pixels = db.find(elements, PIXEL_DATA)
        value = b.data[pixels.value : pixels.end]
        variants = {
            "2 bytes short": value[:-2],
            "10 bytes short": value[:-10],
            "half": value[: len(value) // 2],
            "2 bytes": value[:2],
            "empty": b"",
            "2 bytes long": value + b"\x00\x00",
            "4 bytes long": value + b"\x00" * 4,
            "a row long": value + value[:24],
            "double": value + value,
        }
        for name, new in variants.items():
            data = db.replace(b.data, pixels, db.element(PIXEL_DATA, "OW", new, b.implicit))
            yield b.case(f"Pixel Data {name}", "pixel length", data, BROKEN)

        def us(tag: int, number: int, implicit: bool = b.implicit) -> bytes:
            return db.element(tag, "US", struct.pack("<H", number), implicit)

        attributes = {
            "Rows + 1": (ROWS, us(ROWS, 17), BROKEN),
            "Rows - 1": (ROWS, us(ROWS, 15), BROKEN),
            "Columns x 2": (COLUMNS, us(COLUMNS, 24), BROKEN),
            "Bits Allocated 8": (BITS, us(BITS, 8), BROKEN),
            "Bits Allocated 32": (BITS, us(BITS, 32), BROKEN),
            "Samples per Pixel 3": (SAMPLES, us(SAMPLES, 3), BROKEN),
            "Rows 0": (ROWS, us(ROWS, 0), MISMATCH),
            "Bits Allocated 12": (BITS, us(BITS, 12), MISMATCH),
            "Samples per Pixel 2": (SAMPLES, us(SAMPLES, 2), MISMATCH),
            "Rows missing": (ROWS, b"", MISMATCH),
            "Bits Allocated missing": (BITS, b"", MISMATCH),
            "Rows of 4 bytes": (ROWS, db.element(ROWS, "US", b"\x10\x00\x10\x00"), MISMATCH),
        }
        for name, (tag, new, expected) in attributes.items():
            if name == "Rows of 4 bytes" and b.implicit:
                continue
            data = db.replace(b.data, db.find(elements, tag), new)
            yield b.case(name, "pixel length", data, expected)
        for text, expected in ((b"2 ", BROKEN), (b"0 ", MISMATCH), (b"abc ", MISMATCH)):
            frames = db.element(FRAMES, "IS", text, b.implicit)
            data = db.insert_sorted(b.data, elements, FRAMES, frames)
            yield b.case(f"Number of Frames {text!r}", "pixel length", data, expected)
        data = db.replace(b.data, pixels, db.header(PIXEL_DATA, "OW", db.UNDEFINED, b.implicit))
        data += db.item(b"") + db.item(value) + db.SEQUENCE_END
        yield b.case("encapsulated in a native syntax", "pixel length", data, BROKEN)


def _fragments(b: Base) -> tuple[db.Placed, list[tuple[int, int]]]:
    """The Pixel Data element and its items' (offset, length), Basic Offset Table first."""
    pixels = db.find(b.elements, PIXEL_DATA)
    items, at = [], pixels.value
    while True:
        group, number, length = struct.unpack("<HHL", b.data[at : at + 8])
        if (group, number) == (0xFFFE, 0xE0DD):
            return pixels, items
        items.append((at, length))
        at += 8 + length


def _patched(data: bytes, at: int, new: bytes) -> bytes:
    return data[:at] + new + data[at + len(new) :]


def corrupt_fragments() -> Iterator[Case]:
    kind = "corrupt fragments"
    for key in ("j2k", "jpeg-ls", "jpeg", "rle", "tomo"):
        b = bases()[key]
        pixels, items = _fragments(b)
        table_at, table_length = items[0]
        first_at, first_length = items[1]
        start = first_at + 8
        yield b.case("first fragment zeroed", kind, _patched(b.data, start, b"\x00" * 16), BROKEN)
        yield b.case("no fragment", kind, b.data[:first_at] + db.SEQUENCE_END, BROKEN)
        tag_bytes = struct.pack("<HH", 0x7FE0, 0x0010)
        yield b.case("item tag replaced", kind, _patched(b.data, first_at, tag_bytes), BROKEN)
        no_table = _patched(b.data, table_at, struct.pack("<HH", 0x0008, 0x0016))
        yield b.case("offset table tag replaced", kind, no_table, BROKEN)
        length_at = first_at + 4
        undefined = _patched(b.data, length_at, struct.pack("<L", db.UNDEFINED))
        yield b.case("fragment of undefined length", kind, undefined, BROKEN)
        odd_table = b.data[:table_at] + db.item(b"\x00" * 6) + b.data[table_at + 8 + table_length :]
        yield b.case("offset table of 6 bytes", kind, odd_table, BROKEN)
        offsets = list(range(0, 4 * 7, 4)) if key != "tomo" else [0, 4, 8]
        wrong = b.data[:table_at] + db.item(struct.pack(f"<{len(offsets)}L", *offsets))
        wrong += b.data[table_at + 8 + table_length :]
        yield b.case("offset table of the wrong size", kind, wrong, BROKEN)
        beyond = [0] + [first_length * 4 + 8 * n for n in range(1, 4)]
        entries = beyond if key == "tomo" else [8]
        table = struct.pack(f"<{len(entries)}L", *entries)
        outside = b.data[:table_at] + db.item(table) + b.data[table_at + 8 + table_length :]
        yield b.case("offsets outside the fragments", kind, outside, BROKEN)
        delimiter = len(b.data) - 8
        bad_end = _patched(b.data, delimiter + 4, struct.pack("<L", 2)) + b"\x00\x00"
        yield b.case("sequence delimiter with a length", kind, bad_end, BROKEN)
        yield b.case("garbage item after fragments", kind, b.data[:-8] + b"\x11" * 8, BROKEN)
        defined = db.with_length(b.data, pixels, pixels.end - pixels.value)
        yield b.case("defined length in an encapsulated syntax", kind, defined, BROKEN)
    jpeg = bases()["jpeg"]
    _, items = _fragments(jpeg)
    start = items[1][0] + 8
    sof = jpeg.data.index(b"\xff\xc0", start)
    yield jpeg.case("SOF3 in baseline", kind, _patched(jpeg.data, sof, b"\xff\xc3"), BROKEN)
    yield jpeg.case("SOF2 in baseline", kind, _patched(jpeg.data, sof, b"\xff\xc2"), BROKEN)
    yield jpeg.case("SOI missing", kind, _patched(jpeg.data, start, b"\xff\xe0"), BROKEN)
    no_sof = _patched(jpeg.data, sof, b"\xff\xda")  # a scan before any frame header
    yield jpeg.case("SOS before SOF", kind, no_sof, BROKEN)
    segment = _patched(jpeg.data, start + 4, b"\x00\x01")  # APP0 length below 2
    yield jpeg.case("segment length 1", kind, segment, BROKEN)
    ls = bases()["jpeg-ls"]
    _, items = _fragments(ls)
    start = items[1][0] + 8
    sof55 = ls.data.index(b"\xff\xf7", start)
    yield ls.case("SOF3 for SOF55", kind, _patched(ls.data, sof55, b"\xff\xc3"), BROKEN)
    yield ls.case("SOF0 for SOF55", kind, _patched(ls.data, sof55, b"\xff\xc0"), BROKEN)
    j2k = bases()["j2k"]
    _, items = _fragments(j2k)
    start = items[1][0] + 8
    yield j2k.case("SOC missing", kind, _patched(j2k.data, start, b"\x00\x00"), BROKEN)
    yield j2k.case("SIZ missing", kind, _patched(j2k.data, start + 2, b"\xff\x52"), BROKEN)
    rle = bases()["rle"]
    _, items = _fragments(rle)
    start = items[1][0] + 8
    header = list(struct.unpack("<16L", rle.data[start : start + 64]))
    headers = {
        "no segment": [0, *header[1:]],
        "3 segments for 2": [3, header[1], header[2], header[2] + 4, *header[4:]],
        "16 segments": [16, *header[1:]],
        "first offset 0": [header[0], 0, *header[2:]],
        "offsets decreasing": [header[0], 64, 63, *header[3:]],
        "offset past the fragment": [header[0], 64, 1 << 20, *header[3:]],
        "unused offset set": [*header[:3], 70, *header[4:]],
    }
    for name, values in headers.items():
        data = _patched(rle.data, start, struct.pack("<16L", *values))
        yield rle.case(f"RLE header: {name}", kind, data, BROKEN)
    tomo = bases()["tomo"]
    _, items = _fragments(tomo)
    for frame in (1, 3):
        at = items[frame + 1][0] + 8
        yield tomo.case(
            f"frame {frame} SOC missing", kind, _patched(tomo.data, at, b"\x00\x00"), BROKEN
        )
    table_at, table_length = items[0]
    offsets = list(struct.unpack("<4L", tomo.data[table_at + 8 : table_at + 24]))
    swapped = [offsets[0], offsets[2], offsets[1], offsets[3]]
    for name, values in (("offsets swapped", swapped), ("first offset not 0", [4, *offsets[1:]])):
        data = _patched(tomo.data, table_at + 8, struct.pack("<4L", *values))
        yield tomo.case(name, kind, data, BROKEN)
    empty_table = tomo.data[:table_at] + db.item(b"") + tomo.data[table_at + 8 + table_length :]
    for frames, expected in ((b"5 ", BROKEN), (b"3 ", BROKEN), (b"1 ", SUCCESS)):
        placed = db.find(db.top_level(empty_table), FRAMES)
        data = db.replace(empty_table, placed, db.element(FRAMES, "IS", frames))
        if expected == BROKEN:
            yield tomo.case(f"no offset table, {frames!r} frames", kind, data, expected)


BAD_UIDS: dict[str, bytes] = {
    "double dot": b"1.2..3",
    "slash": b"1.2/3",
    "NUL inside": b"1.2\x003.4",
    "65 characters": b"1." + b"2" * 63,
    "80 characters": b"1." + b"2" * 78,
    "non-ASCII": "1.2.3.\u00e9".encode(),
    "newline": b"1.2\n2026-01-01 ERROR forged",
    "letters": b"1.2.abc",
    "leading dot": b".1.2.3",
    "trailing dot": b"1.2.3.",
    "space inside": b"1.2 .3",
    "backslash path": b"..\\..\\etc",
}


def bad_uids() -> Iterator[Case]:
    kind = "invalid UID"
    b = bases()["explicit"]
    elements = b.elements
    for name, value in BAD_UIDS.items():
        for tag, label in ((STUDY, "Study"), (SERIES, "Series"), (FRAME_OF_REFERENCE, "FoR")):
            data = db.replace(b.data, db.find(elements, tag), db.element(tag, "UI", value))
            yield b.case(f"{label} UID {name}", kind, data, MISMATCH)
        both = db.replace(
            b.data, db.find(elements, SOP_INSTANCE), db.element(SOP_INSTANCE, "UI", value)
        )
        yield b.case(f"SOP Instance UID {name}", kind, both, MISMATCH, sop_instance=value)
        nested = db.element(0x00081150, "UI", MG_FOR_PROCESSING.encode())
        nested += db.element(0x00081155, "UI", value)
        sequence = db.element(SOURCE_IMAGES, "SQ", db.item(nested))
        data = db.replace(b.data, db.find(elements, SOURCE_IMAGES), sequence)
        yield b.case(f"nested UID {name}", kind, data, MISMATCH)
    for tag, label in ((STUDY, "Study"), (SERIES, "Series")):
        for name, value in (("leading zero", b"1.2.03.4"), ("empty", b"")):
            data = db.replace(b.data, db.find(elements, tag), db.element(tag, "UI", value))
            yield b.case(f"{label} UID {name}", kind, data, MISMATCH)
    implicit = bases()["implicit"]
    for name in ("slash", "NUL inside", "65 characters"):
        value = BAD_UIDS[name]
        placed = db.find(implicit.elements, STUDY)
        data = db.replace(implicit.data, placed, db.element(STUDY, "UI", value, implicit=True))
        yield implicit.case(f"Study UID {name}", kind, data, MISMATCH)


def identity_mismatch() -> Iterator[Case]:
    kind = "UIDs differ from the command's"
    b = bases()["explicit"]
    yield b.case(
        "another SOP Instance UID", kind, b.data, MISMATCH, sop_instance=uid("other").encode()
    )
    for key in ("implicit", "j2k"):
        other = bases()[key]
        yield other.case(
            "another SOP Instance UID",
            kind,
            other.data,
            MISMATCH,
            sop_instance=uid(f"x{key}").encode(),
        )
    processing = image("for processing", sop_class=MG_FOR_PROCESSING)
    data = db.encode(processing)
    yield b.case(
        "For Processing data set, For Presentation command",
        kind,
        data,
        MISMATCH,
        sop_instance=str(processing.SOPInstanceUID).encode(),
    )
    missing = db.replace(b.data, db.find(b.elements, SOP_CLASS), b"")
    yield b.case("no SOP Class UID", kind, missing, MISMATCH)
    missing = db.replace(b.data, db.find(b.elements, SOP_INSTANCE), b"")
    yield b.case("no SOP Instance UID", kind, missing, MISMATCH)


def other_classes() -> Iterator[Case]:
    """Unknown SOP classes, and known ones the context does not carry."""
    kind = "SOP class and context"
    b = bases()["explicit"]
    for unknown in ("1.2.3.4", "1.2.840.10008.5.1.4.1.1.999", "2.25.1"):
        yield b.case(f"command SOP class {unknown}", kind, b.data, ABORTED, sop_class=unknown)
        placed = db.find(b.elements, SOP_CLASS)
        data = db.replace(b.data, placed, db.element(SOP_CLASS, "UI", unknown.encode()))
        yield b.case(f"data set SOP class {unknown}", kind, data, MISMATCH)
    for other, label in ((CTImageStorage, "CT"), (SecondaryCaptureImageStorage, "SC")):
        ds = image(f"other class {label}", sop_class=other)
        data = db.encode(ds)
        instance = str(ds.SOPInstanceUID).encode()
        yield b.case(
            f"{label} on the MG context",
            kind,
            data,
            MISMATCH,
            sop_class=str(other),
            sop_instance=instance,
        )
        yield b.case(f"{label} data set, MG command", kind, data, MISMATCH, sop_instance=instance)
    implicit = bases()["implicit"]
    yield implicit.case(
        "MG on the Verification context", kind, implicit.data, MISMATCH, context=VERIFICATION
    )
    yield b.case("MG on the MR context", kind, b.data, MISMATCH, context=MR_IMAGE)
    yield b.case(
        "MG with an MR command", kind, b.data, MISMATCH, context=MR_IMAGE, sop_class=MR_IMAGE
    )
    yield b.case("Verification as the SOP class", kind, b.data, ABORTED, sop_class=VERIFICATION)
    yield b.case("Study Root FIND as the SOP class", kind, b.data, ABORTED, sop_class=STUDY_FIND)
    processing = image("processing on presentation", sop_class=MG_FOR_PROCESSING)
    data = db.encode(processing)
    yield b.case(
        "For Processing on the For Presentation context",
        kind,
        data,
        MISMATCH,
        sop_class=MG_FOR_PROCESSING,
        sop_instance=str(processing.SOPInstanceUID).encode(),
    )


def misordered() -> Iterator[Case]:
    kind = "element order"
    b = bases()["explicit"]
    elements = b.elements
    first, second = elements[3], elements[4]
    swapped = (
        b.data[: first.start]
        + b.data[second.start : second.end]
        + b.data[first.start : first.end]
        + b.data[second.end :]
    )
    yield b.case("two elements swapped", kind, swapped, BROKEN)
    study = db.find(elements, STUDY)
    yield b.case(
        "Study UID twice",
        kind,
        db.insert_before(b.data, study, b.data[study.start : study.end]),
        BROKEN,
    )
    other = db.element(STUDY, "UI", uid("second study").encode())
    yield b.case("Study UID twice, differing", kind, db.insert_before(b.data, study, other), BROKEN)
    meta = db.element(0x00020010, "UI", db.IMPLICIT.encode())
    yield b.case("File Meta inside", kind, meta + b.data, BROKEN)
    command = db.element(0x00000002, "UI", MG_FOR_PRESENTATION.encode())
    yield b.case("command element inside", kind, command + b.data, BROKEN)
    yield b.case("item at the top level", kind, db.item(b"") + b.data, BROKEN)
    yield b.case("sequence delimiter at the top level", kind, db.SEQUENCE_END + b.data, BROKEN)
    yield b.case("item delimiter at the top level", kind, b.data + db.ITEM_END, BROKEN)
    pixels = db.find(elements, PIXEL_DATA)
    after = db.element(0x00080008, "CS", b"ORIGINAL")
    yield b.case("element after Pixel Data out of order", kind, b.data + after, BROKEN)
    yield b.case("Pixel Data twice", kind, b.data + b.data[pixels.start : pixels.end], BROKEN)


def deflate_abuse() -> Iterator[Case]:
    kind = "deflate"
    b = bases()["deflated"]
    plain = db.encode(image("deflated"))
    bomb = plain + db.element(0xFFFCFFFC, "OB", b"\x00" * (8 << 20))  # trailing padding
    yield b.case("inflates to 8 MiB", kind, db.deflate(bomb), BROKEN)
    yield b.case("not a deflate stream", kind, plain, BROKEN)
    yield b.case("bytes after the stream", kind, b.data + b"\x01\x02\x03\x04", BROKEN)
    yield b.case("two streams", kind, b.data + b.data, BROKEN)
    truncated_inside = db.deflate(plain[:-7])
    yield b.case("inflates to a truncated data set", kind, truncated_inside, BROKEN)


def corpus() -> list[Case]:
    groups: list[Callable[[], Iterator[Case]]] = [
        truncated,
        garbage,
        lengths_past_the_end,
        never_closed,
        deeply_nested,
        wrong_vrs,
        encoding_mismatch,
        pixel_lengths,
        corrupt_fragments,
        bad_uids,
        identity_mismatch,
        other_classes,
        misordered,
        deflate_abuse,
    ]
    return [case for group in groups for case in group()]


def valid_controls() -> list[Case]:
    """Near misses the node must store, byte for byte, and read: each valid base, an odd
    pixel count with its pad byte, UN for a known element, sequences 31 deep, a leading
    zero in a UID the node does not use, a tomosynthesis object's frames without an offset
    table."""
    made = [b.case("as sent", "valid", b.data, SUCCESS) for b in bases().values()]
    odd = image("odd pixel count", rows=5, columns=3)
    odd.BitsAllocated, odd.BitsStored, odd.HighBit = 8, 8, 7
    odd.PixelData = bytes(range(15))
    control = base("odd", odd, db.EXPLICIT)
    made.append(control.case("15 pixels and a pad byte", "valid", control.data, SUCCESS))
    for name, change in _control_changes().items():
        ds = image(f"control {name}")
        explicit = base(f"control {name}", ds, db.EXPLICIT)
        made.append(explicit.case(name, "valid", change(explicit), SUCCESS))
    tomo = compressed("tomo without offsets", JPEG2000Lossless, "pylibjpeg", frames=4)
    _, items = _fragments(tomo)
    table_at, table_length = items[0]
    data = tomo.data[:table_at] + db.item(b"") + tomo.data[table_at + 8 + table_length :]
    made.append(tomo.case("no Basic Offset Table", "valid", data, SUCCESS))
    return made


def _control_changes() -> dict[str, Callable[[Base], bytes]]:
    def un_for_known(b: Base) -> bytes:
        placed = db.find(b.elements, 0x00080060)
        return db.replace(b.data, placed, db.element(0x00080060, "UN", b"MG"))

    def deep(b: Base) -> bytes:
        return db.insert_sorted(b.data, b.elements, CONTENT_SEQUENCE, _nested(31, False))

    def leading_zero_reference(b: Base) -> bytes:
        nested = db.element(0x00081150, "UI", MG_FOR_PROCESSING.encode())
        nested += db.element(0x00081155, "UI", b"1.2.03.4")
        sequence = db.element(SOURCE_IMAGES, "SQ", db.item(nested))
        return db.replace(b.data, db.find(b.elements, SOURCE_IMAGES), sequence)

    return {
        "Modality as UN": un_for_known,
        "sequences 31 deep": deep,
        "leading zero in a reference": leading_zero_reference,
    }
