"""Structural check benchmark: what checking a received data set costs before 0x0000.

Writes spool files as pynetdicom leaves them (preamble, File Meta Information, the data set)
for a ~500 MB synthetic breast tomosynthesis object (native, and JPEG 2000 lossless: one
encoded frame repeated behind a Basic Offset Table) and a 3328x2560 16-bit mammogram (native,
JPEG 2000 lossless, deflated), then checks each in a fresh process and prints the best wall
time of a few runs, the peak RSS above the process's idle level and the peak of Python
allocations. The files are in the page cache when checked (they were just written), as a
spool file is when its last fragment has arrived. Figures are printed, never asserted.

    python bench/structure.py [--workdir DIR] [--repeats 3] [--keep]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import shutil
import struct
import sys
import tempfile
import time
import tracemalloc
import zlib
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_frames
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.synthetic import BREAST_TOMOSYNTHESIS, SyntheticPatient, mammogram

MG_ROWS, MG_COLUMNS = 3328, 2560
TOMO_ROWS, TOMO_COLUMNS = 2457, 1996  # a common tomosynthesis detector
TARGET = 500 * 2**20
CHUNK = 16 * 2**20


@dataclass(frozen=True)
class Spooled:
    name: str
    path: Path
    sop_class: str
    sop_instance: str
    syntax: str


def _encoded(ds: Dataset) -> bytes:
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_dataset(buffer, ds)
    return buffer.getvalue()


def _meta(ds: Dataset, syntax: str) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = syntax
    meta.ImplementationClassUID = "1.2.826.0.1.3680043.9.7433.99.3"
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_file_meta_info(buffer, meta, enforce_standard=True)
    return b"\x00" * 128 + b"DICM" + buffer.getvalue()


def _pixel_header(length: int) -> bytes:
    return struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OW", 0, length)


def _header_of(ds: Dataset) -> Dataset:
    header = Dataset(ds)
    del header.PixelData
    return header


def _spool(folder: Path, name: str, ds: Dataset, syntax: str, body: list[bytes]) -> Spooled:
    path = folder / f"{name}.dcm"
    with path.open("wb") as spool:
        spool.write(_meta(ds, syntax))
        for part in body:
            spool.write(part)
    return Spooled(name, path, str(ds.SOPClassUID), str(ds.SOPInstanceUID), syntax)


def native_tomosynthesis(folder: Path) -> Spooled:
    ds = mammogram(
        SyntheticPatient(), rows=TOMO_ROWS, columns=TOMO_COLUMNS, sop_class=BREAST_TOMOSYNTHESIS
    )
    frame = ds.PixelData
    frames = -(-TARGET // len(frame))
    ds.NumberOfFrames = frames
    path = folder / "tomosynthesis-native.dcm"
    with path.open("wb") as spool:
        spool.write(_meta(ds, ExplicitVRLittleEndian))
        spool.write(_encoded(_header_of(ds)))
        spool.write(_pixel_header(len(frame) * frames))
        for _ in range(frames):
            spool.write(frame)
    return Spooled(
        "tomosynthesis native",
        path,
        str(ds.SOPClassUID),
        str(ds.SOPInstanceUID),
        ExplicitVRLittleEndian,
    )


def _j2k_frame(ds: Dataset) -> bytes:
    encoded = Dataset(ds)
    encoded.file_meta = FileMetaDataset()
    encoded.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    encoded.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg", generate_instance_uid=False)
    return next(generate_frames(encoded.PixelData, number_of_frames=1))


def encapsulated_body(ds: Dataset, frame: bytes, frames: int) -> list[bytes]:
    """Header, Pixel Data of undefined length, a Basic Offset Table, one fragment a frame."""
    if frames > 1:
        ds.NumberOfFrames = frames
    item = struct.pack("<HHL", 0xFFFE, 0xE000, len(frame)) + frame
    table = struct.pack(f"<{frames}L", *(n * len(item) for n in range(frames)))
    head = _encoded(_header_of(ds))
    pixel = struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFF)
    start = struct.pack("<HHL", 0xFFFE, 0xE000, len(table)) + table
    return [head, pixel, start, *([item] * frames), struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)]


def j2k_tomosynthesis(folder: Path) -> Spooled:
    ds = mammogram(
        SyntheticPatient(), rows=TOMO_ROWS, columns=TOMO_COLUMNS, sop_class=BREAST_TOMOSYNTHESIS
    )
    frame = _j2k_frame(ds)
    frames = -(-TARGET // len(frame))
    return _spool(
        folder, "tomosynthesis J2K", ds, JPEG2000Lossless, encapsulated_body(ds, frame, frames)
    )


def mammograms(folder: Path) -> list[Spooled]:
    ds = mammogram(SyntheticPatient(), rows=MG_ROWS, columns=MG_COLUMNS)
    native = _encoded(ds)
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = packer.compress(native) + packer.flush()
    deflated += b"\x00" * (len(deflated) % 2)
    j2k = encapsulated_body(ds, _j2k_frame(ds), 1)
    return [
        _spool(folder, "mammogram native", ds, ExplicitVRLittleEndian, [native]),
        _spool(folder, "mammogram J2K", ds, JPEG2000Lossless, j2k),
        _spool(folder, "mammogram deflated", ds, DeflatedExplicitVRLittleEndian, [deflated]),
    ]


def _rss_kb(field: str) -> int:
    """VmRSS (now) or VmHWM (the peak since the last reset) of this process, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _reset_peak_rss() -> None:
    """Linux resets VmHWM to the current RSS when "5" is written to clear_refs."""
    Path("/proc/self/clear_refs").write_text("5")


def _measure(spooled: Spooled, repeats: int, results: multiprocessing.Queue[object]) -> None:
    """In a fresh process: the check's best time, peak RSS above idle, Python peak."""
    from node.dicom.structure import Announced, check_structure

    announced = Announced(
        spooled.sop_class, spooled.sop_instance, spooled.sop_class, spooled.syntax
    )
    check_structure(spooled.path, announced)  # caches warm (the data dictionary's lookups)
    idle = _rss_kb("VmRSS")
    _reset_peak_rss()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        checked = check_structure(spooled.path, announced)
        times.append(time.perf_counter() - started)
    peak = _rss_kb("VmHWM")
    tracemalloc.start()
    check_structure(spooled.path, announced)
    _, python_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    results.put(
        (min(times), (peak - idle) / 1024, python_peak / 1024, checked.elements, checked.fragments)
    )


def measure(spooled: Spooled, repeats: int) -> tuple[float, float, float, int, int]:
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[object] = context.Queue()
    process = context.Process(target=_measure, args=(spooled, repeats, results))
    process.start()
    figures = results.get(timeout=600)
    process.join()
    return figures  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the spool files")
    args = parser.parse_args()
    folder = args.workdir or Path(tempfile.mkdtemp(prefix="bench-structure-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        objects = [native_tomosynthesis(folder), j2k_tomosynthesis(folder), *mammograms(folder)]
        print(f"wrote {len(objects)} spool files in {time.perf_counter() - started:.0f} s\n")
        columns = ("size MB", "check ms", "RSS +MB", "Python peak KB")
        print(f"{'object':<22}" + "".join(f"{c:>16}" for c in columns) + "  walked")
        for spooled in objects:
            seconds, rss, python, elements, fragments = measure(spooled, args.repeats)
            size = spooled.path.stat().st_size / 2**20
            walked = f"{elements} elements" + (f", {fragments} fragment(s)" if fragments else "")
            figures = (size, seconds * 1000, rss, python)
            print(f"{spooled.name:<22}" + "".join(f"{f:>16.1f}" for f in figures) + f"  {walked}")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
