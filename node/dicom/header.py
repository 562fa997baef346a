"""Read a spooled instance's header and turn it into index records.

Only the header is read (``stop_before_pixels``), so a 500 MB tomosynthesis object costs a
few kilobytes of memory here. Errors name the attribute, never its value, because values
can be patient data.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset, read_file_meta_info

from models.serving import frame_laterality, view_code_of
from node.errors import NodeError
from storage.records import InstanceRecord, PatientRecord, SeriesRecord, StudyRecord

logger = logging.getLogger(__name__)

UID_MAX_LENGTH = 64
UNDEFINED_LENGTH = 0xFFFFFFFF


class HeaderUnreadable(NodeError):
    """The data set cannot be parsed as DICOM (answered 0xC000)."""


class HeaderMismatch(NodeError):
    """The data set parses but does not match its command or lacks required UIDs (0xA900)."""


@dataclass(frozen=True)
class Header:
    patient: PatientRecord
    study: StudyRecord
    series: SeriesRecord
    instance: InstanceRecord


def read_header(path: Path, inflated: bytes | None = None) -> Dataset:
    """The data set up to its Pixel Data. ``inflated``: a deflated data set's header as the
    structural check inflated it (pydicom would inflate the whole object in memory)."""
    ds: Dataset
    try:
        if inflated is None:
            ds = dcmread(path, stop_before_pixels=True)
        else:
            meta = read_file_meta_info(path)
            ds = Dataset(read_dataset(BytesIO(inflated), False, True))
            ds.file_meta = meta
    except Exception as exc:  # pydicom raises assorted error types on garbage
        raise HeaderUnreadable(f"data set does not parse ({type(exc).__name__})") from exc
    _check_structure(ds)
    return ds


def _check_structure(ds: Dataset) -> None:
    """pydicom reads leniently; bytes that are not a DICOM data set show up as an element
    whose declared length runs past the end of the data. Refuse those."""
    for raw in ds._dict.values():
        if not isinstance(raw, RawDataElement) or raw.length == UNDEFINED_LENGTH:
            continue
        if raw.value is not None and len(raw.value) < raw.length:
            raise HeaderUnreadable(f"element {raw.tag} runs past the end of the data set")


def records_from(ds: Dataset, sop_class_uid: str, sop_instance_uid: str) -> Header:
    """Check the data set against its C-STORE command and extract the index records."""
    try:
        return _records_from(ds, sop_class_uid, sop_instance_uid)
    except (HeaderMismatch, HeaderUnreadable):
        raise
    except Exception as exc:  # a value pydicom cannot convert: the data set is malformed
        raise HeaderUnreadable(f"data set has unreadable values ({type(exc).__name__})") from exc


def _records_from(ds: Dataset, sop_class_uid: str, sop_instance_uid: str) -> Header:
    dataset_class = _text(ds, "SOPClassUID")
    dataset_instance = _text(ds, "SOPInstanceUID")
    if dataset_class != sop_class_uid:
        raise HeaderMismatch("SOP Class UID in the data set differs from the command's")
    if dataset_instance != sop_instance_uid:
        raise HeaderMismatch("SOP Instance UID in the data set differs from the command's")
    for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
        value = _text(ds, keyword)
        if not value:
            raise HeaderMismatch(f"required attribute {keyword} is missing or empty")
        if len(value) > UID_MAX_LENGTH:
            raise HeaderMismatch(f"{keyword} is longer than {UID_MAX_LENGTH} characters")

    issuer = _text(ds, "IssuerOfPatientID") or ""
    patient = PatientRecord(
        patient_id=_text(ds, "PatientID") or "",
        issuer=issuer,
        patient_name=_text(ds, "PatientName"),
        birth_date=_date(ds, "PatientBirthDate"),
        sex=_fitted("PatientSex", _text(ds, "PatientSex")),
    )
    study = StudyRecord(
        study_instance_uid=str(ds.StudyInstanceUID),
        accession_number=_text(ds, "AccessionNumber"),
        study_date=_date(ds, "StudyDate"),
        study_time=_fitted("StudyTime", _text(ds, "StudyTime")),
        study_description=_text(ds, "StudyDescription"),
    )
    series = SeriesRecord(
        series_instance_uid=str(ds.SeriesInstanceUID),
        modality=_fitted("Modality", _text(ds, "Modality")),
        series_number=_integer(ds, "SeriesNumber"),
        series_description=_text(ds, "SeriesDescription"),
        body_part_examined=_text(ds, "BodyPartExamined"),
        laterality=_fitted("Laterality", _text(ds, "Laterality")),
    )
    instance = InstanceRecord(
        sop_instance_uid=dataset_instance,
        sop_class_uid=dataset_class,
        transfer_syntax_uid=str(ds.file_meta.TransferSyntaxUID),
        instance_number=_integer(ds, "InstanceNumber"),
        image_laterality=_fitted(
            "ImageLaterality", _text(ds, "ImageLaterality") or frame_laterality(ds)
        ),
        view_position=_fitted("ViewPosition", _text(ds, "ViewPosition")),
        view_code=_fitted("ViewCode", view_code_of(ds)),
        image_type=_text(ds, "ImageType"),
        acquisition_datetime=_fitted("AcquisitionDateTime", _acquisition_datetime(ds)),
        content_date=_date(ds, "ContentDate"),
        content_time=_fitted("ContentTime", _text(ds, "ContentTime")),
        rows=_integer(ds, "Rows"),
        columns=_integer(ds, "Columns"),
        number_of_frames=_integer(ds, "NumberOfFrames"),
    )
    return Header(patient, study, series, instance)


def _text(ds: Dataset, keyword: str) -> str | None:
    """The element's value as text (multi-values joined by backslash), None when absent. A
    NUL inside is no DICOM text (PS3.5 6.1.3) and no index value (PostgreSQL refuses it):
    refused with 0xA900, not retried for ever as an index failure."""
    if keyword not in ds:
        return None
    value: Any = ds[keyword].value
    if value is None or value == "":
        return None
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        text = "\\".join(str(v) for v in value)
    else:
        text = str(value).strip()
    if "\x00" in text:
        raise HeaderMismatch(f"{keyword} holds a NUL character")
    return text or None


# The index keeps these in columns of a fixed size (storage.tables): a longer value, which
# breaks its VR anyway, is left out of the index (the stored object keeps it), so that it
# cannot make the index refuse the instance (0xA700, retried for ever).
INDEXED_LENGTH = {
    "PatientSex": 16,
    "StudyTime": 32,
    "Modality": 16,
    "Laterality": 2,
    "ImageLaterality": 2,
    "ViewPosition": 16,
    "ViewCode": 16,
    "AcquisitionDateTime": 32,
    "ContentTime": 32,
}
DATE = re.compile(r"\d{8}")


def _fitted(keyword: str, value: str | None) -> str | None:
    """``value`` for the index, None with a warning (naming the attribute, not its value)
    when it does not fit its column."""
    if value is not None and len(value) > INDEXED_LENGTH[keyword]:
        logger.warning("%s is too long for the index; the instance is indexed without it", keyword)
        return None
    return value


def _date(ds: Dataset, keyword: str) -> str | None:
    """A DA value when it is a date (YYYYMMDD): "1960-01-01" or "19601345" are stored in the
    object as received, but indexed as absent, so that they neither stop the instance nor
    reach what reads the index."""
    value = _text(ds, keyword)
    if value is None:
        return None
    try:
        if DATE.fullmatch(value):
            datetime.strptime(value, "%Y%m%d")
            return value
    except ValueError:
        pass
    logger.warning("%s is not a valid date; the instance is indexed without it", keyword)
    return None


def _integer(ds: Dataset, keyword: str) -> int | None:
    text = _text(ds, keyword)
    if text is None:
        return None
    try:
        return int(float(text.split("\\")[0]))
    except ValueError:
        logger.warning("ignoring non-numeric %s in a received instance", keyword)
        return None


def _acquisition_datetime(ds: Dataset) -> str | None:
    combined = _text(ds, "AcquisitionDateTime")
    if combined:
        return combined
    date, time = _text(ds, "AcquisitionDate"), _text(ds, "AcquisitionTime")
    if date:
        return date + (time or "")
    return None
