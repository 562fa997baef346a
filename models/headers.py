"""Which breast and which view a breast image's header names. pydicom only, so that the
result builders can ask without importing the networks."""

from __future__ import annotations

from collections.abc import Iterator

from pydicom.dataset import Dataset

VIEW_CODES = {  # SNOMED CT view codes (CID 4014) -> ACR MQCM abbreviations
    "399162004": "CC",
    "399368009": "MLO",
    "399260004": "ML",
    "399352003": "LM",
    "399099002": "LMO",
    "399192003": "SIO",
    "399101009": "XCCL",
}


def _declared_sides(ds: Dataset) -> Iterator[str]:
    """Image Laterality, the series' Laterality, then the functional groups' Frame
    Laterality (tomosynthesis, Enhanced MR), as written, upper case."""
    for keyword in ("ImageLaterality", "Laterality"):
        yield str(ds.get(keyword, "") or "").strip().upper()
    for groups in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        sequence = ds.get(groups)
        anatomy = sequence[0].get("FrameAnatomySequence") if sequence else None
        if anatomy:
            yield str(anatomy[0].get("FrameLaterality", "") or "").strip().upper()


def laterality_of(ds: Dataset) -> str | None:
    """The single breast the image shows, L or R; None when it names neither."""
    return next((side for side in _declared_sides(ds) if side in {"L", "R"}), None)


def shows_both_breasts(ds: Dataset) -> bool:
    """The image is marked as showing both breasts (laterality B)."""
    return "B" in _declared_sides(ds)


def view_of(ds: Dataset) -> str | None:
    codes = ds.get("ViewCodeSequence")
    if codes and str(codes[0].get("CodeValue", "")) in VIEW_CODES:
        return VIEW_CODES[str(codes[0].CodeValue)]
    position = str(ds.get("ViewPosition", "") or "").strip().upper()
    return position or None
