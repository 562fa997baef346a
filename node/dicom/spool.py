"""Where pynetdicom spools incoming C-STORE data sets, and cleaning up after aborts.

With ``STORE_RECV_CHUNKED_DATASET`` pynetdicom writes each data set fragment to a temporary
file as it arrives, so memory stays flat however large the object. It creates that file
with ``tempfile.NamedTemporaryFile`` in the system temp folder; we direct it into the
store's spool folder instead, on the same file system as the store, so committing an
instance is a rename, not a copy. An aborted transfer leaves its partial file behind; the
connection-closed handler removes it, and start-up sweeps whatever a crash left.
"""

from __future__ import annotations

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


def spool_into(folder: Path) -> None:
    """Make this process's C-STORE receptions stream to files under ``folder``."""
    _config.STORE_RECV_CHUNKED_DATASET = True
    dimse_messages.NamedTemporaryFile = functools.partial(  # type: ignore[attr-defined,assignment]
        tempfile.NamedTemporaryFile, dir=folder, prefix=spool_prefix(os.getpid())
    )


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
