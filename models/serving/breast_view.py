"""Which breast and which view an image shows: the node's one reader of laterality and view.

Study completion (from the index's columns), the models and the result builders all ask here,
so a view code one of them understands is understood by all. pydicom only, so that the SCP's
process can ask without importing the networks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pydicom.dataset import Dataset

# View codes (PS3.16 CID 4014) -> ACR MQCM abbreviations: SNOMED CT, and the SNOMED-RT
# designators (coding scheme SRT) that older modalities still send (pairs as in pydicom's
# SNOMED CT / SNOMED-RT mapping).
VIEW_CODES = {
    "399162004": "CC",
    "R-10242": "CC",
    "399368009": "MLO",
    "R-10226": "MLO",
    "399260004": "ML",
    "R-10224": "ML",
    "399352003": "LM",
    "R-10228": "LM",
    "399099002": "LMO",
    "R-10230": "LMO",
    "399192003": "SIO",
    "399101009": "XCCL",
    "R-1024B": "XCCL",
}
SIDES = frozenset({"L", "R"})


def side_from(declared: Iterable[str | None]) -> str | None:
    """The first declared laterality that names one breast (L or R), upper case."""
    for value in declared:
        side = (value or "").strip().upper()
        if side in SIDES:
            return side
    return None


def view_from(view_position: str | None, view_code: str | None) -> str | None:
    """The view abbreviation: the coded view (CID 4014) when it is one we know, else the
    View Position as written; None when neither says."""
    coded = VIEW_CODES.get((view_code or "").strip())
    if coded:
        return coded
    position = (view_position or "").strip().upper()
    return position or None


def _declared_sides(ds: Dataset) -> Iterator[str]:
    """Image Laterality, the series' Laterality, then the functional groups' Frame
    Laterality (tomosynthesis, Enhanced MR), as written, upper case."""
    for keyword in ("ImageLaterality", "Laterality"):
        yield str(ds.get(keyword, "") or "").strip().upper()
    yield (frame_laterality(ds) or "").strip().upper()


def frame_laterality(ds: Dataset) -> str | None:
    """Enhanced objects (tomosynthesis, Enhanced MR) keep laterality in functional groups."""
    for groups in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        sequence = ds.get(groups)
        anatomy = sequence[0].get("FrameAnatomySequence") if sequence else None
        if anatomy and anatomy[0].get("FrameLaterality"):
            return str(anatomy[0].FrameLaterality)
    return None


def laterality_of(ds: Dataset) -> str | None:
    """The single breast the image shows, L or R; None when it names neither."""
    return side_from(_declared_sides(ds))


def shows_both_breasts(ds: Dataset) -> bool:
    """The image is marked as showing both breasts (laterality B)."""
    return "B" in _declared_sides(ds)


def view_code_of(ds: Dataset) -> str | None:
    """The Code Value of the image's first View Code Sequence item, as written."""
    codes = ds.get("ViewCodeSequence")
    code = codes[0].get("CodeValue") if codes else None
    return str(code) if code else None


def view_of(ds: Dataset) -> str | None:
    return view_from(str(ds.get("ViewPosition", "") or ""), view_code_of(ds))
