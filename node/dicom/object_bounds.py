"""The size of a data set while it arrives, counted from the P-DATA-TF PDUs themselves.

pynetdicom writes each data set fragment to the spool as it comes and learns its size only
at the end: a peer streaming an endless object would fill the disk. Counting the fragments
of each P-DATA-TF (PS3.8 9.3.5: item length, context ID, message control header) before
pynetdicom sees them lets the association be aborted before a fragment past the bound, or
past the disk's reserve, reaches the spool.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

PDV_HEADER = struct.Struct(">LBB")  # item length, presentation context ID, control header
COMMAND = 0x01
LAST_FRAGMENT = 0x02
# Below the reserve, a data set is still received up to this size, so that a small one is
# answered 0xA700 (out of resources, which senders retry) rather than aborted; a larger
# one is aborted. 16 associations at once use at most 256 MiB of the reserve so.
RESERVE_GRACE_BYTES = 16 << 20


class ObjectTally:
    """Bytes of the data set now arriving on one association."""

    def __init__(self, max_bytes: int, space_short: Callable[[], bool] | None) -> None:
        self.max_bytes = max_bytes  # 0: no bound
        self.space_short = space_short
        self.received = 0

    def add(self, body: bytes | bytearray) -> str | None:
        """Count one P-DATA-TF body; the reason to abort, or None."""
        offset, data_set = 0, False
        finished = False
        while offset + PDV_HEADER.size <= len(body):
            length, _, control = PDV_HEADER.unpack_from(body, offset)
            if not control & COMMAND:
                data_set = True
                self.received += max(length - 2, 0)
                finished = finished or bool(control & LAST_FRAGMENT)
            offset += 4 + length
        received = self.received
        if finished:
            self.received = 0
        if self.max_bytes and received > self.max_bytes:
            return f"data set past {self.max_bytes} bytes (max_object_bytes)"
        below = self.space_short is not None and received > RESERVE_GRACE_BYTES
        if data_set and below and self.space_short is not None and self.space_short():
            return (
                f"free space below the reserve (min_free_bytes) with a data set past "
                f"{RESERVE_GRACE_BYTES} bytes arriving"
            )
        return None
