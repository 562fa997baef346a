"""A study's instances still in the store, with the paths of their files: what an analysis
and a training manifest read. Purged instances (retention) are left out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from storage.filestore import FileStore
from storage.index import InstanceIndex


@dataclass(frozen=True)
class StoredInstance:
    sop_instance_uid: str
    sop_class_uid: str
    series_instance_uid: str
    path: Path


def stored_instances(
    index: InstanceIndex, store: FileStore, study_uid: str
) -> tuple[StoredInstance, ...]:
    return tuple(
        StoredInstance(
            i.sop_instance_uid,
            i.sop_class_uid,
            i.series_instance_uid,
            store.path_of(i.file_path),
        )
        for i in index.instances(study_uid)
        if i.purged_at is None
    )
