"""SQLAlchemy tables of the index: patients, studies, series and instances.

The index holds what later stages need to decide and select (laterality, view, frames...)
without opening files. It may hold patient data; operational logs never do.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

UID = String(64)


class Base(DeclarativeBase):
    pass


class Patient(Base):
    __tablename__ = "patients"
    __table_args__ = (UniqueConstraint("patient_id", "issuer", name="uq_patients_identity"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[str] = mapped_column(Text)
    issuer: Mapped[str] = mapped_column(Text, default="")
    patient_name: Mapped[str | None] = mapped_column(Text)
    birth_date: Mapped[str | None] = mapped_column(String(8))
    sex: Mapped[str | None] = mapped_column(String(16))


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_instance_uid: Mapped[str] = mapped_column(UID, unique=True)
    patient_fk: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    accession_number: Mapped[str | None] = mapped_column(Text)
    study_date: Mapped[str | None] = mapped_column(String(8))
    study_time: Mapped[str | None] = mapped_column(String(32))
    study_description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # How many instances are indexed for the study, and the newest reception among them:
    # kept by the index in the same transaction as each instance row, so that the
    # completion sweep reads the pending studies and never scans the instances.
    received_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The latest analysis version enqueued and what it covers: ``analysed_count`` instances,
    # the newest received at ``analysed_through``. A study with more instances than its
    # version covers is pending; a late instance re-opens it whatever its reception time.
    analysed_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    analysed_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    analysed_through: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# Only the pending studies are in this index, so a sweep costs what is pending, not what the
# node has received over the years.
PENDING = Study.received_count > Study.analysed_count
Index("ix_studies_pending", Study.id, sqlite_where=PENDING, postgresql_where=PENDING)


class Series(Base):
    __tablename__ = "series"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    series_instance_uid: Mapped[str] = mapped_column(UID, unique=True)
    study_fk: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    modality: Mapped[str | None] = mapped_column(String(16))
    series_number: Mapped[int | None] = mapped_column(Integer)
    series_description: Mapped[str | None] = mapped_column(Text)
    body_part_examined: Mapped[str | None] = mapped_column(Text)
    laterality: Mapped[str | None] = mapped_column(String(2))


class Instance(Base):
    __tablename__ = "instances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sop_instance_uid: Mapped[str] = mapped_column(UID, unique=True)
    sop_class_uid: Mapped[str] = mapped_column(UID)
    series_fk: Mapped[int] = mapped_column(ForeignKey("series.id"), index=True)
    transfer_syntax_uid: Mapped[str] = mapped_column(UID)
    instance_number: Mapped[int | None] = mapped_column(Integer)
    image_laterality: Mapped[str | None] = mapped_column(String(2))
    view_position: Mapped[str | None] = mapped_column(String(16))
    view_code: Mapped[str | None] = mapped_column(String(16))
    image_type: Mapped[str | None] = mapped_column(Text)
    acquisition_datetime: Mapped[str | None] = mapped_column(String(32))
    content_date: Mapped[str | None] = mapped_column(String(8))
    content_time: Mapped[str | None] = mapped_column(String(32))
    rows: Mapped[int | None] = mapped_column(Integer)
    columns: Mapped[int | None] = mapped_column(Integer)
    number_of_frames: Mapped[int | None] = mapped_column(Integer)
    file_path: Mapped[str] = mapped_column(Text, unique=True)
    file_size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    calling_ae: Mapped[str] = mapped_column(String(16))
    peer_address: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    # Set when retention removed the file; the row stays as the record of what was received.
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
