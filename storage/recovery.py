"""Start-up reconciliation of the file store with the index, after a crash or power cut.

A received file without an index row was never acknowledged (the row commit comes before 0x0000),
so it is removed; an index row without its file would be a lost acknowledged instance and
is reported loudly, never hidden.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.filestore import FileStore
from storage.index import InstanceIndex
from storage.outbox import Outbox


@dataclass(frozen=True)
class Reconciliation:
    spool_files_removed: int
    orphan_files_removed: int
    missing_files: tuple[str, ...]


def reconcile(store: FileStore, index: InstanceIndex, outbox: Outbox) -> Reconciliation:
    """Also for results: a result file without its row belongs to an analysis whose job was
    never completed (it runs again), so it is removed too."""
    spool_removed = store.sweep_spool()
    indexed = index.file_paths() | outbox.result_paths()
    on_disk = set(store.stored_objects()) | set(store.stored_objects(results=True))
    orphans = sorted(on_disk - indexed)
    for relative in orphans:
        store.remove(relative)
    missing = tuple(sorted(p for p in indexed - on_disk if not store.path_of(p).is_file()))
    return Reconciliation(spool_removed, len(orphans), missing)
