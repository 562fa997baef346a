"""One running node per storage root, unless the configuration says the root is shared.

Start-up sweeps the spool and removes unindexed files; a second node doing that on a root
another node is using would destroy the first one's transfers in progress and the objects it is
about to index. So ``breastnode serve`` takes an advisory lock (``flock``) on a file in the
root before it touches anything else, and gives up at once, naming the root and the running
node's process id, when another node holds it.

A root configured as shared (``[storage] shared = true``: scale-out, several nodes on one
root and one PostgreSQL) is held with a shared lock by every running node. Start-ups queue on
a second lock file, and only a node that finds itself alone (it can take the main lock
exclusively) reconciles the store; the others leave it as the running nodes need it.

The lock is held by the supervisor's open file: it goes when the process ends however it
ends, so a killed node never leaves a stale lock behind. Locks need a file system that
supports them (local ones do; NFS through its lock manager).
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from types import TracebackType

from node.errors import NodeError

logger = logging.getLogger(__name__)

LOCK_NAME = ".breastnode.lock"
START_LOCK_NAME = ".breastnode-start.lock"
SHARED_MARK = "shared"


class RootBusy(NodeError):
    """Another node is running on the storage root."""


class RootLock:
    """Held for the life of ``breastnode serve``; :attr:`alone` says whether this node may
    reconcile the store (always, unless the root is shared and other nodes run on it)."""

    def __init__(self, root: Path, shared: bool) -> None:
        self.root = root
        self.shared = shared
        self.alone = False
        self._fd: int | None = None
        self._start_fd: int | None = None

    def __enter__(self) -> RootLock:
        self.acquire()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.release()

    def acquire(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise NodeError(f"cannot lock the storage root {self.root}: {exc.strerror}") from exc
        try:
            if self.shared:
                self._acquire_shared()
            else:
                self._acquire_exclusive()
        except BaseException:
            self.release()
            raise

    def started(self) -> None:
        """Start-up is over (the store reconciled): let other nodes sharing the root start."""
        if not self.shared or self._fd is None:
            return
        if self.alone:  # held exclusively while reconciling; now share it
            fcntl.flock(self._fd, fcntl.LOCK_SH)
        if self._start_fd is not None:
            os.close(self._start_fd)  # closing the file releases its lock
            self._start_fd = None

    def release(self) -> None:
        for fd in (self._start_fd, self._fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._start_fd = None

    def _acquire_exclusive(self) -> None:
        assert self._fd is not None
        if not _try_lock(self._fd, fcntl.LOCK_EX):
            raise RootBusy(self._busy_message())
        _write_holder(self._fd, str(os.getpid()))
        self.alone = True

    def _acquire_shared(self) -> None:
        assert self._fd is not None
        try:
            self._start_fd = os.open(self.root / START_LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise NodeError(f"cannot lock the storage root {self.root}: {exc.strerror}") from exc
        if not _try_lock(self._start_fd, fcntl.LOCK_EX):  # one start-up at a time
            logger.info("waiting for another node's start-up on the shared root %s", self.root)
            fcntl.flock(self._start_fd, fcntl.LOCK_EX)
        if _try_lock(self._fd, fcntl.LOCK_EX):
            _write_holder(self._fd, SHARED_MARK)
            self.alone = True
            return
        if not _try_lock(self._fd, fcntl.LOCK_SH):
            raise RootBusy(self._busy_message())
        logger.info(
            "storage root %s is shared with running node(s): start-up reconciliation skipped",
            self.root,
        )

    def _busy_message(self) -> str:
        assert self._fd is not None
        holder = os.pread(self._fd, 64, 0).decode("ascii", "replace").strip()
        if holder == SHARED_MARK:
            who = "nodes that share it ([storage] shared = true)"
        elif holder.isdigit():
            who = f"another node (pid {holder})"
        else:
            who = "another node"
        return (
            f"storage root {self.root} is in use by {who}; not started. Stop that node first, "
            "or give this one its own [storage] root"
            + ("" if self.shared else " (or set [storage] shared = true on every node sharing it)")
        )


def _try_lock(fd: int, kind: int) -> bool:
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _write_holder(fd: int, holder: str) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{holder}\n".encode("ascii"), 0)
