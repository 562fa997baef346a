"""Training and evaluation on a site's labelled data: manifests and dataset readers, lesion
annotations, splits, the training loop and its patch stage, calibration of the operating
point, evaluation (metrics, FROC, localisation, baselines), the reports and the site audit.
The node's CLI uses it; the running node never does."""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.faces import lazy_names

if TYPE_CHECKING:
    from models.training.dataset import (
        DatasetError,
        Row,
        class_name,
        describe,
        label_index,
        read_manifest,
        with_splits,
        write_manifest,
    )
    from models.training.dataset_readers import READERS, Converted
    from models.training.evaluation import evaluate
    from models.training.fit import TrainingSettings, save_checkpoint, train, write_epoch_log
    from models.training.report import caveat, write_report
    from models.training.site_audit import AuditCase
    from models.training.site_audit_report import AuditContext, write_audit_report
    from models.training.splits import split_by_patient
    from models.training.training_data import place_rows

# name -> the module that defines it; loaded on first use, so that importing the face
# costs nothing until a name is asked for
_HOMES = {
    "AuditCase": "site_audit",
    "AuditContext": "site_audit_report",
    "Converted": "dataset_readers",
    "DatasetError": "dataset",
    "READERS": "dataset_readers",
    "Row": "dataset",
    "TrainingSettings": "fit",
    "caveat": "report",
    "class_name": "dataset",
    "describe": "dataset",
    "evaluate": "evaluation",
    "label_index": "dataset",
    "place_rows": "training_data",
    "read_manifest": "dataset",
    "save_checkpoint": "fit",
    "split_by_patient": "splits",
    "train": "fit",
    "with_splits": "dataset",
    "write_audit_report": "site_audit_report",
    "write_epoch_log": "fit",
    "write_manifest": "dataset",
    "write_report": "report",
}
__all__ = [
    "READERS",
    "AuditCase",
    "AuditContext",
    "Converted",
    "DatasetError",
    "Row",
    "TrainingSettings",
    "caveat",
    "class_name",
    "describe",
    "evaluate",
    "label_index",
    "place_rows",
    "read_manifest",
    "save_checkpoint",
    "split_by_patient",
    "train",
    "with_splits",
    "write_audit_report",
    "write_epoch_log",
    "write_manifest",
    "write_report",
]

__getattr__ = lazy_names(__name__, _HOMES)
