"""The file store: durable placement of received objects under generated names.

Layout under the storage root::

    spool/            transfers in progress (swept at start-up and after aborts)
    objects/YYYYMMDD/ committed objects, named by a random UUID, never by a received string

A spooled file becomes durable in :meth:`FileStore.commit`: its data is fsynced, it is
renamed into ``objects/`` (same file system, so the rename is atomic) and the folder is
fsynced, so the name survives a power cut before anyone is told the object is stored.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class Digest:
    sha256: str
    size: int


class FileStore:
    """Places, finds and removes stored objects; knows nothing of DICOM."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.spool_dir = root / "spool"
        self.objects_dir = root / "objects"
        self.results_dir = root / "results"

    def prepare(self) -> None:
        for folder in (self.root, self.spool_dir, self.objects_dir, self.results_dir):
            folder.mkdir(parents=True, exist_ok=True)

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.objects_dir).free

    def path_of(self, relative: str) -> Path:
        return self.root / relative

    @staticmethod
    def digest_and_sync(path: Path) -> Digest:
        """SHA-256 and size of ``path``, then fsync it, in one pass over the file."""
        sha = hashlib.sha256()
        size = 0
        with path.open("rb") as handle:
            while chunk := handle.read(HASH_CHUNK):
                sha.update(chunk)
                size += len(chunk)
            os.fsync(handle.fileno())
        return Digest(sha.hexdigest(), size)

    def commit(self, spooled: Path, now: datetime | None = None, results: bool = False) -> str:
        """Move an fsynced spool file into the store (received objects, or the node's own
        results); returns its path relative to the root."""
        area = self.results_dir if results else self.objects_dir
        day = (now or datetime.now(UTC)).strftime("%Y%m%d")
        folder = area / day
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            _fsync_dir(area)
        target = folder / f"{uuid.uuid4().hex}.dcm"
        spooled.rename(target)
        _fsync_dir(folder)
        return target.relative_to(self.root).as_posix()

    def remove(self, relative: str) -> None:
        """Delete a stored object (rollback of a commit that the index refused)."""
        path = self.path_of(relative)
        path.unlink(missing_ok=True)
        _fsync_dir(path.parent)

    def stored_objects(self, results: bool = False) -> Iterator[str]:
        """Every committed object (or result), as paths relative to the root."""
        area = self.results_dir if results else self.objects_dir
        for path in area.glob("*/*.dcm"):
            yield path.relative_to(self.root).as_posix()

    def sweep_spool(self, keep: set[Path] | None = None, prefix: str = "") -> int:
        """Delete spool files whose name starts with ``prefix`` (all by default) and that
        are not in ``keep``; returns how many were removed."""
        removed = 0
        keep = keep or set()
        for path in self.spool_dir.iterdir():
            if path in keep or not path.is_file() or not path.name.startswith(prefix):
                continue
            path.unlink(missing_ok=True)
            removed += 1
        return removed


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
