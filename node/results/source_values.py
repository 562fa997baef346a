"""The patient and study values result objects copy from their sources, made ones they can
carry.

Every result object copies the Patient and General Study modules of its source (highdicom
converts the dates and times, and raises on a value it cannot convert, quoting it). A
modality may send a birth date such as "1960-01-01" or "19601345": the image is stored as
received and analysed all the same; its results carry the attribute empty (all of these are
type 2), and no error message quotes the value.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from datetime import date

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

logger = logging.getLogger(__name__)

_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_TIME = re.compile(r"([01]\d|2[0-3])([0-5]\d)?([0-5]\d|60)?(\.\d{1,6})?")


def _is_date(text: str) -> bool:
    found = _DATE.fullmatch(text)
    if found is None:
        return False
    try:
        date(*(int(part) for part in found.groups()))
    except ValueError:
        return False
    return True


def _is_time(text: str) -> bool:
    found = _TIME.fullmatch(text)
    # a fraction only after seconds, seconds only after minutes
    return (
        found is not None
        and (found[4] is None or found[3] is not None)
        and (found[3] is None or found[2] is not None)
    )


RULES: dict[str, Callable[[str], bool]] = {
    "PatientBirthDate": _is_date,
    "PatientBirthTime": _is_time,
    "PatientSex": lambda text: text in ("M", "F", "O"),
    "StudyDate": _is_date,
    "StudyTime": _is_time,
}


def _raw_text(ds: Dataset, keyword: str) -> str | None:
    """The value as sent, read without pydicom converting (and so warning about) it."""
    element = ds.get_item(keyword)
    if element is None or element.value is None:
        return None
    value = element.value
    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return text.strip(" \x00")


def empty_what_results_cannot_carry(sources: Iterable[Dataset]) -> list[str]:
    """Empty, in the given data sets (the analysis's own copies; the stored files never
    change), the values of :data:`RULES` that break their VR. The keywords emptied."""
    emptied = []
    for ds in sources:
        for keyword, valid in RULES.items():
            text = _raw_text(ds, keyword)
            if text is None or text == "" or valid(text):
                continue
            tag = tag_for_keyword(keyword)
            assert tag is not None
            ds[tag] = DataElement(tag, dictionary_VR(tag), "")
            emptied.append(keyword)
    for keyword in sorted(set(emptied)):
        logger.warning("%s of a source is not valid: its results carry it empty", keyword)
    return emptied
