"""A training manifest from studies already stored in the node, labelled by a CSV.

The label CSV has ``study_instance_uid`` and ``label`` columns, and optionally
``laterality`` (the label then belongs to that breast only). Mammography gives one row per
stored image of the study (or of that breast); breast MRI gives one row per study, whose
path is a folder of links to the study's stored files (named by number, never by UID).

Patient IDs are not written: each patient gets a pseudonym (a salted hash of the ID), which
keeps her images on one side of a split without putting identifiers in a data file.
"""

from __future__ import annotations

import csv
import hashlib
import secrets
import shutil
from collections import Counter
from pathlib import Path

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from models.serving import MAMMOGRAPHY_CLASSES, MR_CLASSES, laterality_of, view_of
from models.training import Converted, DatasetError, Row, class_name
from node.cli.common import open_database
from node.config import Settings
from node.errors import NodeError
from storage.filestore import FileStore
from storage.study_files import stored_instances

NOT_STORED = "study not in the store"
NO_IMAGES = "no mammography or MR images in the study"
OTHER_BREAST = "image of the other breast"
NO_LATERALITY = "image without laterality"


def stored_rows(settings: Settings, labels: Path, task: str, folder: Path) -> Converted:
    """Rows for the labelled stored studies; MR link folders go under ``folder``."""
    wanted = _labels(labels, task)
    store = FileStore(settings.storage_root)
    salt = secrets.token_hex(16)  # pseudonyms hold within one manifest, not across manifests
    rows: list[Row] = []
    skipped: Counter[str] = Counter()
    with open_database(settings) as (_engine, index):
        for number, (study_uid, laterality, label) in enumerate(wanted, start=1):
            instances = stored_instances(index, store, study_uid)
            patient = index.patient_of(study_uid)
            if not instances or patient is None:
                skipped[NOT_STORED] += 1
                continue
            pseudonym = "patient-" + hashlib.sha256((salt + patient[0]).encode()).hexdigest()[:16]
            study = f"study-{number:05d}"
            mr = [i for i in instances if i.sop_class_uid in MR_CLASSES]
            mammograms = [i for i in instances if i.sop_class_uid in MAMMOGRAPHY_CLASSES]
            if task == "mri_benign_malignant":
                if not mr:
                    skipped[NO_IMAGES] += 1
                    continue
                links = folder / "stored-studies" / study
                shutil.rmtree(links, ignore_errors=True)  # links of an earlier manifest
                links.mkdir(parents=True)
                for n, instance in enumerate(mr, start=1):
                    link = links / f"{n:05d}.dcm"
                    link.unlink(missing_ok=True)
                    link.symlink_to(instance.path.resolve())
                rows.append(Row(links, pseudonym, study, laterality, None, label))
                continue
            if not mammograms:
                skipped[NO_IMAGES] += 1
                continue
            for instance in mammograms:
                side, view = _laterality_and_view(instance.path)
                if laterality is not None and side != laterality:
                    skipped[OTHER_BREAST if side else NO_LATERALITY] += 1
                    continue
                rows.append(Row(instance.path, pseudonym, study, side, view, label))
    return Converted(tuple(rows), dict(skipped))


def _labels(path: Path, task: str) -> list[tuple[str, str | None, str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if not {"study_instance_uid", "label"} <= set(reader.fieldnames or ()):
                raise NodeError(f"{path.name}: needs study_instance_uid and label columns")
            found = []
            for line, record in enumerate(reader, start=2):
                uid = (record.get("study_instance_uid") or "").strip()
                side = (record.get("laterality") or "").strip().upper() or None
                if not uid or side not in {None, "L", "R"}:
                    raise NodeError(f"{path.name} row {line}: needs a study UID; laterality L/R")
                try:
                    found.append((uid, side, class_name(task, record.get("label") or "")))
                except DatasetError as exc:
                    raise NodeError(f"{path.name} row {line}: {exc}") from None
    except OSError as exc:
        raise NodeError(f"cannot read {path}: {exc}") from exc
    return found


def _laterality_and_view(path: Path) -> tuple[str | None, str | None]:
    try:
        ds = dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError):
        return None, None
    return laterality_of(ds), view_of(ds)
