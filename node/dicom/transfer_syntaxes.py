"""Which transfer syntaxes a stored object is offered in, and its encoding in the one accepted.

Result objects are stored once, as built (Explicit VR Little Endian). A PACS may take only some
transfer syntaxes, and full-size RGB overlays are large, so each object is offered lossless
JPEG-LS first when it has pixel data, then Explicit and Implicit VR Little Endian, which every
Storage SCP must accept (PS3.5 10.1). The stored file never changes: the conversion is made at
send time, once, in the syntax the peer accepted.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGLSLossless

from node.errors import NodeError

IMAGE_PROPOSALS: tuple[UID, ...] = (JPEGLSLossless, ExplicitVRLittleEndian, ImplicitVRLittleEndian)
NON_IMAGE_PROPOSALS: tuple[UID, ...] = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
JPEG_LS_PLUGIN = "pyjpegls"
PIXEL_DATA = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


class EncodingError(NodeError):
    """The object cannot be written in the transfer syntax the peer accepted."""


@dataclass(frozen=True)
class StoredObject:
    """What the proposal needs to know of a stored file, read without its pixel data."""

    path: Path
    sop_class_uid: UID
    transfer_syntax: UID
    has_pixels: bool

    @property
    def proposals(self) -> tuple[UID, ...]:
        """Preferred first. A stored syntax outside the list (a compressed source) is offered
        first: sent as it is, nothing is decoded."""
        preferred = IMAGE_PROPOSALS if self.has_pixels else NON_IMAGE_PROPOSALS
        if self.transfer_syntax in preferred:
            return preferred
        return (self.transfer_syntax, *preferred)


def inspect(path: Path) -> StoredObject:
    """Read the header of a stored object; large values are skipped, not loaded."""
    try:
        ds = dcmread(path, defer_size=1024)
        syntax = UID(str(ds.file_meta.TransferSyntaxUID))
        sop_class = UID(str(ds.SOPClassUID))
        has_pixels = any(
            tag in ds for tag in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
        )
    except (OSError, InvalidDicomError, AttributeError, KeyError, ValueError) as exc:
        raise EncodingError(f"cannot read the stored object: {type(exc).__name__}") from exc
    return StoredObject(path, sop_class, syntax, has_pixels)


def scratch_prefix(pid: int) -> str:
    """Converted copies carry their process id, so a dead sender's leftovers can be swept
    (as the receivers' spool files are)."""
    return f"tx-{pid}-"


@contextmanager
def encoded(stored: StoredObject, syntax: UID, scratch: Path | None = None) -> Iterator[Path]:
    """A file of the object in ``syntax``, for the sender to stream: the stored file itself
    when it is already in that syntax, otherwise a copy converted once into ``scratch`` (the
    store's spool folder, which the node sweeps; the system temp folder when None), removed
    when the block ends. (A data set handed to pynetdicom would be written with the raw
    elements of the syntax it was read in, so the conversion is written by pydicom here.)"""
    if syntax == stored.transfer_syntax:
        yield stored.path
        return
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 closed at once, removed below
        dir=scratch, prefix=scratch_prefix(os.getpid()), suffix=".dcm", delete=False
    )
    handle.close()
    target = Path(handle.name)
    try:
        _convert(stored, syntax, target)
        yield target
    finally:
        target.unlink(missing_ok=True)


def _convert(stored: StoredObject, syntax: UID, target: Path) -> None:
    try:
        ds = dcmread(stored.path)
        if syntax == JPEGLSLossless:
            _compress_jpeg_ls(ds)
        elif not syntax.is_compressed and not syntax.is_deflated:
            if ds.file_meta.TransferSyntaxUID.is_compressed:
                ds.decompress(generate_instance_uid=False)
            ds.file_meta.TransferSyntaxUID = syntax
        else:
            raise EncodingError(f"no encoder for {syntax.name}")
        ds.save_as(target, enforce_file_format=True)
    except EncodingError:
        raise
    except Exception as exc:  # pydicom's encoders raise what their plugins raise
        raise EncodingError(f"cannot encode in {syntax.name}: {type(exc).__name__}") from exc


def _compress_jpeg_ls(ds: Dataset) -> None:
    """Lossless JPEG-LS of the stored pixels. Colour goes sample-interleaved, Planar
    Configuration 0, as PS3.5 8.2.3 asks; a planar (1) source is re-ordered first."""
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        ds.decompress(generate_instance_uid=False)
    if int(ds.get("SamplesPerPixel", 1)) > 1 and int(ds.get("PlanarConfiguration", 0)) == 1:
        pixels = ds.pixel_array  # (rows, columns, samples) whatever the planar configuration
        ds.PlanarConfiguration = 0
        ds.compress(
            JPEGLSLossless, pixels, encoding_plugin=JPEG_LS_PLUGIN, generate_instance_uid=False
        )
    else:
        ds.compress(JPEGLSLossless, encoding_plugin=JPEG_LS_PLUGIN, generate_instance_uid=False)
