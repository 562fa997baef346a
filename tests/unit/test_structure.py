"""The structural check on spooled data sets, without a network: the whole malformed corpus
gets its expected outcome, and the rules that need data sets of their own (packed 1-bit
data, subsampled colour, pad bytes, offset tables, JPEG segments, nested Pixel Data, deflate
bounds, flat memory on a 512 MB object)."""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path

import pytest

from node.config import Settings
from node.dicom.structure import (
    Announced,
    Limits,
    NotItsClass,
    StructureBroken,
    check_structure,
)
from node.dicom.structure import elements as walker_module
from tests.support import dicom_bytes as db
from tests.support.malformed import ABORTED, BROKEN, MISMATCH, SUCCESS, corpus, valid_controls

MG = "1.2.840.10008.5.1.4.1.1.1.2"
J2K = "1.2.840.10008.1.2.4.90"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
INSTANCE = "1.2.3.4"


def outcome(path: Path, announced: Announced, limits: Limits | None = None) -> int:
    try:
        check_structure(path, announced, limits or Limits())
    except StructureBroken:
        return BROKEN
    except NotItsClass:
        return MISMATCH
    return SUCCESS


def test_every_corpus_input_gets_its_outcome_from_the_check(tmp_path: Path) -> None:
    """At the check, the inputs the network library aborts (a command SOP class it cannot
    route) are refused too: their SOP class is not the context's."""
    wrong = []
    for case in [*corpus(), *valid_controls()]:
        path = db.spool_file(tmp_path / "spooled.dcm", case.data, case.syntax)
        announced = Announced(
            case.sop_class, case.sop_instance.decode("latin-1"), case.context, case.syntax
        )
        expected = MISMATCH if case.expected == ABORTED else case.expected
        got = outcome(path, announced, Limits(max_inflated_bytes=1 << 20))
        if got != expected:
            wrong.append(f"{case.name}: {got:#06x}")
    assert wrong == []


def image(
    pixels: bytes | None,
    rows: int = 4,
    columns: int = 4,
    bits: int = 16,
    samples: int = 1,
    photometric: bytes = b"MONOCHROME2",
    frames: bytes | None = None,
    extra: bytes = b"",
    encapsulated: bytes | None = None,
) -> bytes:
    """A minimal image data set, explicit VR little endian; ``extra`` goes between the
    image attributes and Pixel Data (tags in that range)."""
    us = lambda tag, value: db.element(tag, "US", struct.pack("<H", value))  # noqa: E731
    data = b"".join(
        (
            db.element(0x00080016, "UI", MG.encode()),
            db.element(0x00080018, "UI", INSTANCE.encode()),
            db.element(0x0020000D, "UI", b"1.2.3.5"),
            db.element(0x0020000E, "UI", b"1.2.3.6"),
            us(0x00280002, samples),
            db.element(0x00280004, "CS", photometric, pad=b" "),
            db.element(0x00280008, "IS", frames, pad=b" ") if frames else b"",
            us(0x00280010, rows),
            us(0x00280011, columns),
            us(0x00280100, bits),
            extra,
        )
    )
    if encapsulated is not None:
        return data + db.header(0x7FE00010, "OB", db.UNDEFINED) + encapsulated
    assert pixels is not None
    return data + db.element(0x7FE00010, "OW" if bits > 8 else "OB", pixels)


def check(tmp_path: Path, data: bytes, syntax: str = db.EXPLICIT, **limits: object) -> int:
    path = db.spool_file(tmp_path / "spooled.dcm", data, syntax)
    return outcome(path, Announced(MG, INSTANCE, MG, syntax), Limits(**limits))  # type: ignore[arg-type]


def test_one_bit_pixels_are_counted_packed(tmp_path: Path) -> None:
    # 5 x 3 pixels x 2 frames = 30 bits: 4 bytes
    args = {"rows": 5, "columns": 3, "bits": 1, "frames": b"2"}
    assert check(tmp_path, image(b"\x00" * 4, **args)) == SUCCESS  # type: ignore[arg-type]
    assert check(tmp_path, image(b"\x00" * 30, **args)) == BROKEN  # type: ignore[arg-type]
    assert check(tmp_path, image(b"\x00" * 2, **args)) == BROKEN  # type: ignore[arg-type]


def test_subsampled_colour_is_two_samples_a_pixel(tmp_path: Path) -> None:
    ybr = {"bits": 8, "samples": 3, "photometric": b"YBR_FULL_422"}
    assert check(tmp_path, image(b"\x00" * 32, **ybr)) == SUCCESS  # type: ignore[arg-type]
    assert check(tmp_path, image(b"\x00" * 48, **ybr)) == BROKEN  # type: ignore[arg-type]
    rgb = {"bits": 8, "samples": 3, "photometric": b"RGB"}
    assert check(tmp_path, image(b"\x00" * 48, **rgb)) == SUCCESS  # type: ignore[arg-type]


def test_one_pad_byte_only_where_the_length_is_odd(tmp_path: Path) -> None:
    odd = {"rows": 3, "columns": 5, "bits": 8}
    padded = image(b"\x00" * 15, **odd)  # type: ignore[arg-type]
    assert check(tmp_path, padded) == SUCCESS  # written with its pad byte: 16
    two_more = image(b"\x00" * 17, **odd)  # type: ignore[arg-type]  # 18 with its pad
    assert check(tmp_path, two_more) == BROKEN
    assert check(tmp_path, image(b"\x00" * 34)) == BROKEN  # 32 required, even: no pad


def _j2k_frame(size: int = 16) -> bytes:
    return b"\xff\x4f\xff\x51" + b"\x00" * (size - 4)


def test_an_extended_offset_table_locates_the_frames(tmp_path: Path) -> None:
    frames = [_j2k_frame(), b"\x11" * 8, _j2k_frame(), _j2k_frame(32)]  # frame 0 in two
    offsets = struct.pack("<3Q", 0, 16 + 8 + 8 + 8, 16 + 8 + 8 + 8 + 16 + 8)
    lengths = struct.pack("<3Q", 24, 16, 32)

    def data(table: bytes, eot: bytes, basic: bytes = b"") -> bytes:
        extra = db.element(0x7FE00001, "OV", table) + db.element(0x7FE00002, "OV", lengths)
        fragments = db.item(basic) + b"".join(db.item(f) for f in frames) + db.SEQUENCE_END
        return image(None, frames=b"3", extra=extra if eot else b"", encapsulated=fragments)

    assert check(tmp_path, data(offsets, b"yes"), J2K) == SUCCESS
    assert check(tmp_path, data(offsets[:16], b"yes"), J2K) == BROKEN  # 2 offsets, 3 frames
    both = data(offsets, b"yes", basic=struct.pack("<3L", 0, 40, 64))
    assert check(tmp_path, both, J2K) == BROKEN
    assert check(tmp_path, data(b"", b""), J2K) == SUCCESS  # found by their markers


def test_jpeg_segments_are_walked_to_the_frame_header(tmp_path: Path) -> None:
    app = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x00" * 9
    sof0 = b"\xff\xc0" + struct.pack(">H", 11) + b"\x08\x00\x04\x00\x04\x01\x01\x11\x00"
    fill = b"\xff\xff"  # fill bytes may precede a marker
    stream = b"\xff\xd8" + app + fill + sof0 + b"\xff\xda" + b"\x00" * 10 + b"\xff\xd9"

    def data(frame: bytes) -> bytes:
        fragments = db.item(b"") + db.item(frame) + db.SEQUENCE_END
        return image(None, bits=8, encapsulated=fragments)

    assert check(tmp_path, data(stream), JPEG_BASELINE) == SUCCESS
    lossless = stream.replace(b"\xff\xc0", b"\xff\xc3")
    assert check(tmp_path, data(lossless), JPEG_BASELINE) == BROKEN
    endless = b"\xff\xd8" + app * 70  # no frame header within 64 segments
    assert check(tmp_path, data(endless), JPEG_BASELINE) == BROKEN


def test_nested_pixel_data_and_un_sequences_are_walked(tmp_path: Path) -> None:
    """An icon's encapsulated Pixel Data inside a sequence, and an UN element of undefined
    length (its items implicit VR, PS3.5 6.2.2), are well formed."""
    icon = db.item(b"") + db.item(b"\x00" * 8) + db.SEQUENCE_END
    icon_item = db.header(0x7FE00010, "OB", db.UNDEFINED) + icon
    icons = db.header(0x00880200, "SQ", db.UNDEFINED) + db.item(icon_item, db.UNDEFINED)
    icons += db.ITEM_END + db.SEQUENCE_END
    private = db.element(0x00290010, "LO", b"SYNTHETIC")
    un_item = db.element(0x00291001, "", b"ABCD", implicit=True)
    un = db.header(0x00291010, "UN", db.UNDEFINED) + db.item(un_item) + db.SEQUENCE_END
    data = image(b"\x00" * 32, extra=private + un + icons)
    assert check(tmp_path, data) == SUCCESS
    unclosed = image(b"\x00" * 32, extra=private + un[:-8] + icons)
    assert check(tmp_path, unclosed) == BROKEN


def test_too_many_elements_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(walker_module, "MAX_ELEMENTS", 5)
    assert check(tmp_path, image(b"\x00" * 32)) == BROKEN


def test_inflation_is_bounded_in_size_and_time(tmp_path: Path) -> None:
    padding = db.element(0xFFFCFFFC, "OB", b"\x00" * (4 << 20))
    deflated = db.deflate(image(b"\x00" * 32) + padding)
    assert check(tmp_path, deflated, db.DEFLATED) == SUCCESS
    assert check(tmp_path, deflated, db.DEFLATED, max_inflated_bytes=1 << 20) == BROKEN
    assert check(tmp_path, deflated, db.DEFLATED, inflate_seconds=1e-6) == BROKEN


def test_a_deflated_header_is_inflated_without_its_pixels(tmp_path: Path) -> None:
    plain = image(b"\x01" * 32)
    path = db.spool_file(tmp_path / "deflated.dcm", db.deflate(plain), db.DEFLATED)
    checked = check_structure(path, Announced(MG, INSTANCE, MG, db.DEFLATED))
    pixels = db.find(db.top_level(plain), 0x7FE00010)
    assert checked.inflated_header == plain[: pixels.start]


def test_memory_stays_flat_on_a_512_mb_object(tmp_path: Path) -> None:
    """Native Pixel Data is passed over, an encapsulated frame is read at its start only: a
    (sparse) 512 MB spool file costs the check a few kilobytes."""
    rows, columns = 4096, 4096
    size = rows * columns * 2 * 16  # 16-bit, 16 frames: 512 MiB
    head = image(b"", rows=rows, columns=columns, frames=b"16")
    native = head[:-4] + struct.pack("<L", size)  # Pixel Data's length; its value follows
    fragment = db.item(b"") + struct.pack("<HHL", 0xFFFE, 0xE000, size) + _j2k_frame()
    encapsulated = image(None, rows=rows, columns=columns, encapsulated=fragment)
    for syntax, data, missing, tail in (
        (db.EXPLICIT, native, size, b""),
        (J2K, encapsulated, size - 16, db.SEQUENCE_END),
    ):
        path = db.spool_file(tmp_path / "big.dcm", data, syntax)
        with path.open("r+b") as handle:
            handle.seek(missing - 1, 2)  # a hole: the file is sparse
            handle.write(b"\x00" + tail)
        assert path.stat().st_size > size
        tracemalloc.start()
        try:
            result = outcome(path, Announced(MG, INSTANCE, MG, syntax))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert result == SUCCESS
        assert peak < 256 * 1024


def test_the_limits_come_from_the_validation_section() -> None:
    settings = Settings(
        validation={"max_sequence_depth": 8, "max_inflated_bytes": 1000, "inflate_timeout_s": 2}
    )
    assert Limits.configured(settings.validation) == Limits(8, 1000, 2.0)
    assert Limits.configured(Settings().validation) == Limits()
