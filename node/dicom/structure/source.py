"""The bytes of a spooled data set, read forward in bounded pieces.

A :class:`FileSource` reads the spool file and seeks over what the check does not look at
(Pixel Data, large values), so a 500 MB object costs a few kilobytes of memory. An
:class:`InflateSource` inflates a Deflated Explicit VR Little Endian data set as it is
read, within a bound on the inflated size and on the time taken, so a deflate bomb is
refused instead of filling memory or holding a thread.
"""

from __future__ import annotations

import time
import zlib
from typing import BinaryIO, Protocol

from node.dicom.structure.errors import StructureBroken

CHUNK = 1 << 16


class Source(Protocol):
    @property
    def position(self) -> int:
        """Bytes of the data set consumed so far."""

    def read(self, count: int) -> bytes:
        """Exactly ``count`` bytes (callers keep ``count`` small), or StructureBroken."""

    def skip(self, count: int) -> None:
        """Pass over ``count`` bytes, or StructureBroken when fewer are left."""

    def at_end(self) -> bool: ...

    def peek(self, count: int) -> bytes:
        """Up to ``count`` of the next bytes, without consuming them."""

    def remaining(self) -> int | None:
        """Bytes left, when known without reading them."""


def truncated(what: str = "the data set") -> StructureBroken:
    return StructureBroken(f"{what} ends before its declared length (truncated)")


class FileSource:
    """The data set as it lies in a file, from ``start`` to the end of the file."""

    def __init__(self, handle: BinaryIO, start: int, size: int) -> None:
        self._handle = handle
        self._start = start
        self._size = size
        self._at = start
        handle.seek(start)

    @property
    def position(self) -> int:
        return self._at - self._start

    def remaining(self) -> int:
        return self._size - self._at

    def at_end(self) -> bool:
        return self._at >= self._size

    def read(self, count: int) -> bytes:
        if count > self.remaining():
            raise truncated()
        data = self._handle.read(count)
        if len(data) != count:  # the file shrank while being read
            raise truncated()
        self._at += count
        return data

    def skip(self, count: int) -> None:
        if count > self.remaining():
            raise truncated()
        self._handle.seek(count, 1)
        self._at += count

    def peek(self, count: int) -> bytes:
        data = self._handle.read(min(count, self.remaining()))
        self._handle.seek(self._at)
        return data


class InflateSource:
    """A deflated data set (PS3.5 A.5: raw deflate of the Explicit VR Little Endian
    encoding), inflated as it is read. ``capture``: keep the inflated bytes until
    :meth:`stop_capture` (the header, for the header reader), within the same bound."""

    def __init__(
        self,
        handle: BinaryIO,
        start: int,
        max_bytes: int,
        seconds: float,
        capture: bool = False,
    ) -> None:
        handle.seek(start)
        self._handle = handle
        self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self._buffer = bytearray()
        self._offset = 0
        self._position = 0
        self._inflated = 0
        self._max_bytes = max_bytes
        self._seconds = seconds
        self._deadline = time.monotonic() + seconds
        self._capturing = capture
        self.captured = bytearray()

    @property
    def position(self) -> int:
        return self._position

    def remaining(self) -> int | None:
        return None

    def stop_capture(self) -> None:
        self._capturing = False

    def _available(self) -> int:
        return len(self._buffer) - self._offset

    def _fill(self, wanted: int) -> None:
        if self._offset > CHUNK * 4:
            del self._buffer[: self._offset]
            self._offset = 0
        while self._available() < wanted and not self._inflater.eof:
            data = self._inflater.unconsumed_tail or self._handle.read(CHUNK)
            if not data:
                return
            try:
                out = self._inflater.decompress(data, CHUNK * 4)
            except zlib.error as exc:
                raise StructureBroken("the deflated data set is not a deflate stream") from exc
            self._inflated += len(out)
            if self._inflated > self._max_bytes:
                raise StructureBroken(
                    f"the deflated data set inflates past {self._max_bytes} bytes "
                    "([validation] max_inflated_bytes)"
                )
            if time.monotonic() > self._deadline:
                raise StructureBroken(
                    f"inflating the data set took more than {self._seconds:g} s "
                    "([validation] inflate_timeout_s)"
                )
            self._buffer += out

    def at_end(self) -> bool:
        self._fill(1)
        return self._available() == 0

    def peek(self, count: int) -> bytes:
        self._fill(count)
        return bytes(self._buffer[self._offset : self._offset + count])

    def read(self, count: int) -> bytes:
        self._fill(count)
        if self._available() < count:
            raise truncated("the inflated data set")
        data = bytes(self._buffer[self._offset : self._offset + count])
        self._offset += count
        self._position += count
        if self._capturing:
            self.captured += data
        return data

    def skip(self, count: int) -> None:
        while count > 0:
            self._fill(min(count, CHUNK * 4))
            step = min(count, self._available())
            if step == 0:
                raise truncated("the inflated data set")
            if self._capturing:
                self.captured += self._buffer[self._offset : self._offset + step]
            self._offset += step
            self._position += step
            count -= step

    def finish(self) -> None:
        """The stream must end where the data set ends: nothing but a pad byte after it."""
        if not self._inflater.eof:
            raise StructureBroken("the deflate stream does not end where the data set ends")
        rest = self._inflater.unused_data + self._handle.read(2)
        if rest not in (b"", b"\x00"):
            raise StructureBroken("bytes follow the end of the deflate stream")
