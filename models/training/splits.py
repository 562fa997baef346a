"""Train / validation / test splits by patient, never by image: two views of one breast, or
both breasts of one woman, on both sides of a split would leak and flatter every metric.

Patients are stratified by their label (a patient's label is her most severe one, the
highest label index), shuffled with a fixed seed, and dealt to the splits in proportion.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Split:
    train: tuple[int, ...]  # row indices into the dataset
    validation: tuple[int, ...]
    test: tuple[int, ...]


def patient_labels(patients: Sequence[str], labels: Sequence[int]) -> dict[str, int]:
    """Each patient's most severe label."""
    found: dict[str, int] = {}
    for patient, label in zip(patients, labels, strict=True):
        found[patient] = max(found.get(patient, label), label)
    return found


def split_by_patient(
    patients: Sequence[str],
    labels: Sequence[int],
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 0,
) -> Split:
    """Row indices of each split; every row of a patient lands in one split."""
    if len(patients) != len(labels):
        raise ValueError("one patient per label")
    if any(f < 0 for f in fractions) or not np.isclose(sum(fractions), 1.0):
        raise ValueError("fractions are three non-negative numbers adding up to 1")
    rng = np.random.default_rng(seed)
    by_label: Mapping[int, list[str]] = defaultdict(list)
    for patient, label in sorted(patient_labels(patients, labels).items()):
        by_label[label].append(patient)
    assigned: dict[str, int] = {}
    for label in sorted(by_label):
        members = list(by_label[label])
        rng.shuffle(members)
        cut_train = round(len(members) * fractions[0])
        cut_validation = cut_train + round(len(members) * fractions[1])
        for position, patient in enumerate(members):
            assigned[patient] = 0 if position < cut_train else 1 if position < cut_validation else 2
    rows: list[list[int]] = [[], [], []]
    for row, patient in enumerate(patients):
        rows[assigned[patient]].append(row)
    return Split(tuple(rows[0]), tuple(rows[1]), tuple(rows[2]))
