"""Stored files whose index commit failed with the connection, settled once the index answers.

When the database connection drops during the commit of an instance's row, the row may or
may not have been committed. Removing the file then could leave a committed row without its
file: the sender, answered 0xA700, sends the instance again, is told 0x0000 as a duplicate,
and the acknowledged instance has no file. Keeping the file without a row would leave an
orphan. So the file stays until the index can say whether a row names it: then it is kept
(the row is there) or removed. Start-up reconciliation settles whatever a restart leaves.
"""

from __future__ import annotations

import logging
import threading

from storage.errors import StorageError
from storage.filestore import FileStore
from storage.index import InstanceIndex

logger = logging.getLogger(__name__)


class UncertainCommits:
    def __init__(self, store: FileStore, index: InstanceIndex) -> None:
        self.store = store
        self.index = index
        self._lock = threading.Lock()
        self._pending: set[str] = set()

    def indexed_after_all(self, relative: str) -> bool:
        """After a failed commit of the row for ``relative``: True if the row is there after
        all; otherwise the file is removed, or (the index silent) kept until :meth:`settle`."""
        try:
            if self.index.has_file(relative):
                return True
        except StorageError:
            with self._lock:
                self._pending.add(relative)
            logger.warning("kept a stored file whose index commit is uncertain, to settle later")
            return False
        self.store.remove(relative)
        return False

    def settle(self) -> None:
        """Remove the pending files that no row names; cheap when there are none."""
        if not self._pending:
            return
        with self._lock:
            pending = sorted(self._pending)
        for relative in pending:
            try:
                indexed = self.index.has_file(relative)
            except StorageError:
                return  # still silent; the next call tries again
            if not indexed:
                self.store.remove(relative)
            with self._lock:
                self._pending.discard(relative)
            logger.info(
                "settled a stored file whose index commit was uncertain: %s",
                "indexed, kept" if indexed else "not indexed, removed",
            )
