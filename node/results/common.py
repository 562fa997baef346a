"""What every result object shares: new UIDs under the node's root, series numbering, the
Contributing Equipment item (IHE AIR provenance) and the clinical-use label."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import highdicom as hd
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from models.result import ModelInfo

NOT_FOR_CLINICAL_USE = "NOT FOR CLINICAL USE"


@dataclass(frozen=True)
class ResultContext:
    """Per analysis: where UIDs come from and which version of the study's results this is."""

    uid_root: str  # "" for UUID-derived 2.25 UIDs
    device_uid: str
    version: int
    series_number_base: int = 9000

    def new_uid(self) -> str:
        return str(generate_uid(prefix=self.uid_root or None))

    def series_number(self, offset: int) -> int:
        return self.series_number_base + 10 * self.version + offset


def device_uid_for(ae_title: str, configured: str = "") -> str:
    """A stable Device UID for the node: configured, or derived from its AE title."""
    if configured:
        return configured
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, f'breastnode:{ae_title}').int}"


def contributing_equipment(model: ModelInfo, device_uid: str) -> hd.ContributingEquipment:
    equipment = hd.ContributingEquipment(
        manufacturer=model.manufacturer,
        purpose_of_reference=codes.DCM.ProcessingEquipment,
        manufacturer_model_name=model.name,
        software_versions=model.version,
        contribution_description=_label(model, f"{model.name} {model.version}"),
    )
    equipment.DeviceUID = device_uid
    return equipment


def series_description(model: ModelInfo, what: str) -> str:
    """At most 64 characters; unvalidated models say so first, where it cannot be cut."""
    text = _label(model, f"{what} {model.name} {model.version}")
    return text[:64]


def _label(model: ModelInfo, text: str) -> str:
    return text if model.validated_for_clinical_use else f"{NOT_FOR_CLINICAL_USE} {text}"
