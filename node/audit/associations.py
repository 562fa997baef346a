"""Audit of what each association brought: one 110104 record per study per association,
written when the association ends, one 110104 failure record for each refused C-STORE, and a
110113 record for every refused association or connection."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from node.audit.messages import (
    Auditor,
    Outcome,
    StudyObject,
    association_rejected,
    connection_refused,
    instances_received,
)
from node.printable import printable
from storage.records import PatientRecord


@dataclass
class _StudyTally:
    sop_classes: Counter[str] = field(default_factory=Counter)
    patient_id: str | None = None
    patient_name: str | None = None


@dataclass
class _AssociationTally:
    calling_ae: str
    address: str
    studies: dict[str, _StudyTally] = field(default_factory=dict)


class AssociationAudit:
    """Tallies each association's studies while it lasts; audits them when it ends."""

    def __init__(self, auditor: Auditor, node_ae: str) -> None:
        self.auditor = auditor
        self.node_ae = node_ae
        self._lock = threading.Lock()
        self._open: dict[int, _AssociationTally] = {}

    def received(
        self,
        association: int,
        calling_ae: str,
        address: str,
        stored: tuple[PatientRecord, str, str],
    ) -> None:
        """Count one stored instance: (its patient, Study Instance UID, SOP Class UID)."""
        patient, study_uid, sop_class_uid = stored
        with self._lock:
            tally = self._open.setdefault(association, _AssociationTally(calling_ae, address))
            study = tally.studies.setdefault(study_uid, _StudyTally())
            study.sop_classes[sop_class_uid] += 1
            study.patient_id = patient.patient_id
            study.patient_name = patient.patient_name

    def closed(self, association: int) -> None:
        with self._lock:
            tally = self._open.pop(association, None)
        if tally is None:
            return
        for uid, study in tally.studies.items():
            self.auditor.record(
                instances_received(
                    StudyObject(uid, dict(study.sop_classes), study.patient_id, study.patient_name),
                    tally.calling_ae,
                    tally.address,
                    self.node_ae,
                )
            )

    def store_failed(
        self, calling_ae: str, address: str, sop_instance_uid: str, status: int, reason: str
    ) -> None:
        """A refused C-STORE, recorded at once: the received UID escaped, the reason ours."""
        description = (
            f"C-STORE of SOP Instance {printable(sop_instance_uid)} answered "
            f"0x{status:04X}: {reason}"
        )
        self.auditor.record(
            instances_received(
                None, calling_ae, address, self.node_ae, Outcome.SERIOUS_FAILURE, description
            )
        )

    def rejected(self, calling_ae: str, address: str, reason: str) -> None:
        self.auditor.record(association_rejected(calling_ae, address, self.node_ae, reason))

    def connection_refused(self, address: str, reason: str) -> None:
        """A connection refused before it became an association (TLS)."""
        self.auditor.record(connection_refused(address, self.node_ae, reason))
