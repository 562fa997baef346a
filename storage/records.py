"""Plain records passed between the ingest path and the index (no ORM objects leak out)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class PatientRecord:
    patient_id: str
    issuer: str = ""
    patient_name: str | None = None
    birth_date: str | None = None
    sex: str | None = None


@dataclass(frozen=True)
class StudyRecord:
    study_instance_uid: str
    accession_number: str | None = None
    study_date: str | None = None
    study_time: str | None = None
    study_description: str | None = None


@dataclass(frozen=True)
class SeriesRecord:
    series_instance_uid: str
    modality: str | None = None
    series_number: int | None = None
    series_description: str | None = None
    body_part_examined: str | None = None
    laterality: str | None = None


@dataclass(frozen=True)
class InstanceRecord:
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    instance_number: int | None = None
    image_laterality: str | None = None
    view_position: str | None = None
    view_code: str | None = None
    image_type: str | None = None
    acquisition_datetime: str | None = None
    content_date: str | None = None
    content_time: str | None = None
    rows: int | None = None
    columns: int | None = None
    number_of_frames: int | None = None


@dataclass(frozen=True)
class StoredFile:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Reception:
    """Who sent an instance, from where, and when it was acknowledged-to-be."""

    calling_ae: str
    peer_address: str
    received_at: datetime


@dataclass(frozen=True)
class ReceivedInstance:
    patient: PatientRecord
    study: StudyRecord
    series: SeriesRecord
    instance: InstanceRecord
    file: StoredFile
    reception: Reception


@dataclass(frozen=True)
class StudySummary:
    study_instance_uid: str
    modalities: tuple[str, ...]
    instance_count: int
    first_received_at: datetime
    last_received_at: datetime


@dataclass(frozen=True)
class InstanceSummary:
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    series_instance_uid: str
    file_path: str
    file_size: int
    sha256: str
    received_at: datetime
    purged_at: datetime | None = None
