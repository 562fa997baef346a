"""Where every result object comes from, written the same way in each: new UIDs under the
node's root, series numbering, the Contributing Equipment item (IHE AIR provenance) and the
clinical-use label."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from models.serving import Finding, ModelInfo, Shape

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
        """Each analysis version numbers its series in a block of its own (20 wide: the SRs,
        the overlays of each breast and view, the presentation states)."""
        return self.series_number_base + 20 * self.version + offset


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


def sr_arguments(
    evidence: Iterable[Dataset],
    model: ModelInfo,
    context: ResultContext,
    series_instance_uid: str,
    series_offset: int,
    previous_reports: Iterable[Dataset] | None,
) -> dict[str, Any]:
    """What every SR the node makes is built with: the evidence, its own UIDs and number,
    the node as contributing equipment, and the versions it replaces."""
    return {
        "evidence": list(evidence),
        "series_instance_uid": series_instance_uid,
        "series_number": context.series_number(series_offset),
        "sop_instance_uid": context.new_uid(),
        "instance_number": 1,
        "manufacturer": model.manufacturer,
        "is_complete": True,
        "previous_versions": list(previous_reports or ()) or None,
        "contributing_equipment": [contributing_equipment(model, context.device_uid)],
        "transfer_syntax_uid": ExplicitVRLittleEndian,
    }


def graphic_data(finding: Finding) -> np.ndarray:
    """A finding's outline as (column, row) points in its image's pixels, the form SR SCOORDs
    and presentation-state graphics take: an ellipse's two axes' end points, a polygon closed
    (a POLYLINE that ends where it starts), a point as itself."""
    points = [(p.column, p.row) for p in finding.region.points]
    if finding.region.shape is Shape.POLYGON:
        points.append(points[0])
    return np.array(points, dtype=np.float32)


def label_like_sources(ds: Dataset, model: ModelInfo, what: str, source: Dataset) -> None:
    """The series description (saying NOT FOR CLINICAL USE where it applies), the sources'
    character set, which names and texts copied from them need, and their Study Description
    (a study-level attribute every object of the study should state alike; highdicom does
    not copy it)."""
    ds.SeriesDescription = series_description(model, what)
    if "SpecificCharacterSet" in source:
        ds.SpecificCharacterSet = source.SpecificCharacterSet
    if source.get("StudyDescription"):
        ds.StudyDescription = source.StudyDescription


@dataclass
class SeriesPerSide:
    """One series per breast for objects that state General Series Laterality (overlays,
    presentation states): a series holds one laterality, or none for images that name no
    single breast. Each side keeps its own series number, the same in every analysis
    version's block (``offsets``: right, left, neither)."""

    context: ResultContext
    offsets: tuple[int, int, int]
    _made: dict[str | None, tuple[str, int]] = field(default_factory=dict)

    def __call__(self, side: str | None) -> tuple[str, int]:
        """(Series Instance UID, Series Number) of the series for ``side`` (R, L or None)."""
        if side not in self._made:
            offset = self.offsets[{"R": 0, "L": 1}.get(side or "", 2)]
            self._made[side] = (self.context.new_uid(), self.context.series_number(offset))
        return self._made[side]


# Series number offsets of the overlays, by breast and view; the other views of a breast
# (ML, XCCL, ...) share a series per breast. GSPS series take 3, 6 and 7 (gsps.py).
OVERLAY_OFFSETS: dict[tuple[str | None, str | None], int] = {
    ("R", "CC"): 2,
    ("L", "CC"): 4,
    (None, None): 5,
    ("R", "MLO"): 8,
    ("L", "MLO"): 9,
    ("R", None): 10,
    ("L", None): 11,
}


@dataclass
class SeriesPerView:
    """One overlay series per breast and view. Viewers hang series, not images: with a
    breast's CC and MLO overlays in one series, OHIF's mammography protocol put the right
    CC overlay in both upper viewports. The other views of a breast share one series."""

    context: ResultContext
    _made: dict[tuple[str | None, str | None], tuple[str, int]] = field(default_factory=dict)

    @staticmethod
    def key(side: str | None, view: str | None) -> tuple[str | None, str | None]:
        if side is None:
            return (None, None)
        return (side, view if view in ("CC", "MLO") else None)

    def __call__(self, side: str | None, view: str | None) -> tuple[str, int]:
        """(Series Instance UID, Series Number) of the overlays of ``side`` and ``view``."""
        key = self.key(side, view)
        if key not in self._made:
            number = self.context.series_number(OVERLAY_OFFSETS[key])
            self._made[key] = (self.context.new_uid(), number)
        return self._made[key]


def series_description(model: ModelInfo, what: str) -> str:
    """At most 64 characters; unvalidated models say so first, where it cannot be cut."""
    text = _label(model, f"{what} {model.name} {model.version}")
    return text[:64]


def _label(model: ModelInfo, text: str) -> str:
    return text if model.validated_for_clinical_use else f"{NOT_FOR_CLINICAL_USE} {text}"
