"""Where pynetdicom spools incoming C-STORE data sets, and cleaning up after aborts.

With ``STORE_RECV_CHUNKED_DATASET`` pynetdicom writes each data set fragment to a temporary
file as it arrives, so memory stays flat however large the object. It creates that file
with ``tempfile.NamedTemporaryFile`` in the system temp folder; we give it a
:class:`SpoolFile` in the store's spool folder instead, on the same file system as the store,
so committing an instance is a rename, not a copy. An aborted transfer leaves its partial file
behind; the connection-closed handler removes it, and start-up sweeps whatever a crash left.

pynetdicom writes the spool file in its network thread and does not expect the write to fail:
a full file system there killed the association without a status or an A-ABORT and left the
partial file filling the disk. A :class:`SpoolFile` never raises instead: when a write fails, or
free space falls below the reserve while the data set arrives, it empties itself, discards the
rest of the data set and keeps the error, and the C-STORE handler answers 0xA700 with it.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from pynetdicom import _config, dimse_messages
from pynetdicom.service_class import StorageServiceClass
from pynetdicom.sop_class import uid_to_service_class

from node.printable import printable

logger = logging.getLogger(__name__)


def spool_prefix(pid: int) -> str:
    """Spool files carry their process id, so a dead worker's leftovers can be swept."""
    return f"rx-{pid}-"


def spool_into(folder: Path, min_free_bytes: int = 0) -> None:
    """Make this process's C-STORE receptions stream to files under ``folder``, refused
    while they would take the file system's free space below ``min_free_bytes``."""
    _config.STORE_RECV_CHUNKED_DATASET = True
    dimse_messages.NamedTemporaryFile = functools.partial(  # type: ignore[attr-defined,assignment]
        SpoolFile, folder, spool_prefix(os.getpid()), min_free_bytes
    )


def spool_error(request: Any) -> OSError | None:
    """Why the data set of a C-STORE request could not be spooled, if it could not."""
    error = getattr(getattr(request, "_dataset_file", None), "error", None)
    return error if isinstance(error, OSError) else None


class SpoolFile:
    """The file one received data set streams into: unbuffered, and a write never raises."""

    CHECK_EVERY = 4 << 20  # bytes between two looks at the free space

    def __init__(self, folder: Path, prefix: str, min_free_bytes: int, **_options: Any) -> None:
        self.file = self  # pynetdicom flushes ``.file`` after every fragment
        self.error: OSError | None = None
        self.min_free_bytes = min_free_bytes
        self._unchecked = 0
        self._fd: int | None = None
        try:
            self._fd, self.name = tempfile.mkstemp(suffix=".dcm", prefix=prefix, dir=folder)
        except OSError as exc:
            self.name = str(folder / f"{prefix}never-created.dcm")
            self.error = exc
            return
        self._check_reserve()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Write all of ``data``, or (after a failure) nothing; says it wrote it all."""
        size = len(data)
        if self._fd is None:
            return size
        self._unchecked += size
        if self._unchecked >= self.CHECK_EVERY and not self._check_reserve():
            return size
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            self._fail(exc)
        return size

    def flush(self) -> None:
        """Nothing is buffered: each write went to the file."""

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _check_reserve(self) -> bool:
        """False (and the file emptied) when free space is below the reserve."""
        assert self._fd is not None
        self._unchecked = 0
        if not self.min_free_bytes:
            return True
        try:
            stats = os.fstatvfs(self._fd)
        except OSError as exc:
            self._fail(exc)
            return False
        if stats.f_bavail * stats.f_frsize >= self.min_free_bytes:
            return True
        self._fail(OSError(errno.ENOSPC, "free space below [storage] min_free_bytes"))
        return False

    def _fail(self, error: OSError) -> None:
        """Give the space back now; the rest of the data set is read and dropped."""
        assert self._fd is not None
        self.error = error
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        self.close()


def discard_partial_transfer(assoc: Any) -> None:
    """Remove the spool file of a data set still arriving when the connection went away."""
    message = getattr(getattr(assoc, "dimse", None), "message", None)
    handle = getattr(message, "_data_set_file", None)
    if handle is None:
        return
    path = Path(handle.name)
    handle.close()
    path.unlink(missing_ok=True)
    message._data_set_file = None  # type: ignore[union-attr]
    logger.warning("transfer interrupted; removed its partial spool file")


def discard_unserved(message: Any) -> None:
    """pynetdicom aborts a C-STORE whose command names a SOP class it has no storage service
    for (an unknown one, Verification...) once its data set is spooled: the handler never
    sees it, so its spool file is removed here, as soon as the message is complete."""
    command = getattr(message, "command_set", None)
    handle = getattr(message, "_data_set_file", None)
    if command is None or handle is None:
        return
    sop_class = str(command.get("AffectedSOPClassUID", ""))
    if uid_to_service_class(sop_class) is StorageServiceClass:
        return
    handle.close()
    Path(handle.name).unlink(missing_ok=True)
    logger.warning(
        "C-STORE naming SOP class %s, which has no storage service: aborted, spool file removed",
        printable(sop_class),
    )
