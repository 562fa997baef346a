"""The size of a data set while it arrives, counted from the P-DATA-TF PDUs themselves.

pynetdicom writes each data set fragment to the spool as it comes and learns its size only
at the end: a peer streaming an endless object would fill the disk. Counting the fragments
of each P-DATA-TF (PS3.8 9.3.5: item length, context ID, message control header) before
pynetdicom sees them lets the association be aborted before a fragment past the bound
reaches the spool. (The disk's reserve is the spool writer's: past it a data set is dropped
and answered 0xA700, ``node.dicom.spool``.)
"""

from __future__ import annotations

import struct

PDV_HEADER = struct.Struct(">LBB")  # item length, presentation context ID, control header
COMMAND = 0x01
LAST_FRAGMENT = 0x02


class ObjectTally:
    """Bytes of the data set now arriving on one association."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes  # 0: no bound
        self.received = 0

    def add(self, body: bytes | bytearray) -> str | None:
        """Count one P-DATA-TF body; the reason to abort, or None."""
        offset = 0
        finished = False
        while offset + PDV_HEADER.size <= len(body):
            length, _, control = PDV_HEADER.unpack_from(body, offset)
            if not control & COMMAND:
                self.received += max(length - 2, 0)
                finished = finished or bool(control & LAST_FRAGMENT)
            offset += 4 + length
        received = self.received
        if finished:
            self.received = 0
        if self.max_bytes and received > self.max_bytes:
            return f"data set past {self.max_bytes} bytes (max_object_bytes)"
        return None
