"""Labelled datasets for training and evaluation: one CSV manifest format that every reader
(public datasets, studies stored in the node) writes and every tool reads.

Columns: ``path`` (a DICOM or PNG/JPEG image, or a folder holding one MR study; relative to
the manifest's folder unless absolute), ``patient_id``, ``study_id``, ``laterality`` (L, R
or empty), ``view`` (CC, MLO, ... or empty), ``label`` (a class name of the task, or its
number), and optionally ``split`` (train, validation or test) to fix the split by hand,
``annotations`` (the image's lesions in source pixels as a compact JSON list; see
``models.training.annotations`` for the form and why a column), and ``density`` (the breast's
density class, BI-RADS composition a-d or mini-MIAS's fatty / fatty-glandular / dense-glandular,
whatever the task: evaluation breaks lesion detection down by it). Manifests without these
columns load with no annotations and no density, and an image without annotations keeps
its image label alone.
The splits are by patient; the patient column is what keeps a woman on one side.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from models.errors import ModelError
from models.serving.checkpoint import TASKS
from models.training.annotations import Annotation, decode, encode

COLUMNS = (
    "path",
    "patient_id",
    "study_id",
    "laterality",
    "view",
    "label",
    "split",
    "annotations",
    "density",
)
REQUIRED = ("path", "patient_id", "label")
SPLITS = ("train", "validation", "test")
DENSITY_TASKS = ("density", "density_fgd")  # tasks whose label is a density class
DENSITIES = tuple(name for task in DENSITY_TASKS for name in TASKS[task])
# Other spellings of the task's class names that label files commonly use.
ALIASES: dict[str, dict[str, str]] = {
    "normal_abnormal": {"0": "normal", "1": "abnormal", "norm": "normal"},
    "benign_malignant": {"0": "benign", "1": "malignant", "b": "benign", "m": "malignant"},
    "mri_benign_malignant": {"0": "benign", "1": "malignant", "b": "benign", "m": "malignant"},
    "lesion": {"0": "no lesion", "1": "lesion"},
    "density": {str(n): "abcd"[n - 1] for n in range(1, 5)} | {f"density {c}": c for c in "abcd"},
    "density_fgd": {"f": "fatty", "g": "fatty-glandular", "d": "dense-glandular"},
    "birads": {f"{n}": f"BI-RADS {n}" for n in range(1, 6)}
    | {f"bi-rads{n}": f"BI-RADS {n}" for n in range(1, 6)}
    | {f"birads {n}": f"BI-RADS {n}" for n in range(1, 6)},
}


class DatasetError(ModelError):
    """A manifest or label file that cannot be used as it is (says which row and why)."""


@dataclass(frozen=True)
class Row:
    path: Path
    patient_id: str
    study_id: str
    laterality: str | None
    view: str | None
    label: str  # the task's class name, as written in the checkpoint manifest
    split: str | None = None
    annotations: tuple[Annotation, ...] = ()  # lesions in source pixels; () when none given
    density: str | None = None  # one of DENSITIES; None when not given

    def as_csv(self, base: Path | None = None) -> dict[str, str]:
        path = self.path.resolve()
        if base is not None and path.is_relative_to(base):
            path = path.relative_to(base)
        return {
            "path": path.as_posix(),
            "patient_id": self.patient_id,
            "study_id": self.study_id,
            "laterality": self.laterality or "",
            "view": self.view or "",
            "label": self.label,
            "split": self.split or "",
            "annotations": encode(self.annotations, base),
            "density": self.density or "",
        }


def class_name(task: str, value: str) -> str:
    """The task's class name for a label as written in a file (case and alias tolerant)."""
    if task not in TASKS:
        raise DatasetError(f"unknown task {task!r}; one of {', '.join(TASKS)}")
    wanted = value.strip()
    for name in TASKS[task]:
        if wanted.lower() == name.lower():
            return name
    alias = ALIASES.get(task, {}).get(wanted.lower())
    if alias is not None:
        return alias
    raise DatasetError(
        f"label {value!r} is not a class of task {task!r} ({', '.join(TASKS[task])})"
    )


def density_class(value: str) -> str:
    """A density as written in a file, as one of DENSITIES (either task's names or aliases)."""
    for task in DENSITY_TASKS:
        try:
            return class_name(task, value)
        except DatasetError:
            continue
    raise DatasetError(f"density {value!r} is not one of {', '.join(DENSITIES)}")


def label_index(task: str, rows: Sequence[Row]) -> list[int]:
    names = TASKS[task]
    return [names.index(row.label) for row in rows]


def read_manifest(path: Path, task: str) -> list[Row]:
    """Rows of a manifest CSV, labels normalised to ``task``'s class names."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or ())]
            if missing:
                raise DatasetError(f"{path.name}: missing column(s) {', '.join(missing)}")
            rows = [_row(path.parent, line, record, task) for line, record in enumerate(reader, 2)]
    except OSError as exc:
        raise DatasetError(f"cannot read manifest {path}: {exc}") from exc
    if not rows:
        raise DatasetError(f"{path.name}: no rows")
    return rows


def _row(base: Path, line: int, record: dict[str, str | None], task: str) -> Row:
    def value(column: str) -> str:
        return (record.get(column) or "").strip()

    where = f"row {line}"
    for column in REQUIRED:
        if not value(column):
            raise DatasetError(f"{where}: empty {column}")
    try:
        label = class_name(task, value("label"))
    except DatasetError as exc:
        raise DatasetError(f"{where}: {exc}") from None
    laterality = value("laterality").upper() or None
    if laterality not in {None, "L", "R", "B"}:
        raise DatasetError(f"{where}: laterality {laterality!r} is not L, R or B")
    split = value("split").lower() or None
    if split is not None and split not in SPLITS:
        raise DatasetError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)}")
    try:
        annotations = decode(value("annotations"), base)
    except ValueError as exc:
        raise DatasetError(f"{where}: {exc}") from None
    try:
        density = density_class(value("density")) if value("density") else None
    except DatasetError as exc:
        raise DatasetError(f"{where}: {exc}") from None
    image = Path(value("path"))
    return Row(
        path=image if image.is_absolute() else base / image,
        patient_id=value("patient_id"),
        study_id=value("study_id") or value("patient_id"),
        laterality=laterality,
        view=value("view").upper() or None,
        label=label,
        split=split,
        annotations=annotations,
        density=density,
    )


def write_manifest(path: Path, rows: Iterable[Row]) -> int:
    """Write rows as a manifest CSV (paths relative to its folder where they can be)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(row.as_csv(path.parent.resolve()))
            count += 1
    return count


def with_splits(rows: Sequence[Row], assigned: Sequence[str]) -> list[Row]:
    return [replace(row, split=split) for row, split in zip(rows, assigned, strict=True)]


def describe(rows: Sequence[Row]) -> str:
    """One line: images, patients and images per class (for logs and manifests; no IDs)."""
    counts = Counter(row.label for row in rows)
    classes = ", ".join(f"{name} {counts[name]}" for name in sorted(counts))
    patients = len({row.patient_id for row in rows})
    return f"{len(rows)} images of {patients} patients ({classes})"
