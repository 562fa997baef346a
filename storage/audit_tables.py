"""The audit trail: append-only records chained by SHA-256, and the syslog shipping cursor."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.tables import Base


class AuditRecord(Base):
    __tablename__ = "audit_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    event_id: Mapped[str] = mapped_column(String(16), index=True)
    outcome: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditShipping(Base):
    """How far the trail has been sent to the syslog collector (one row)."""

    __tablename__ = "audit_shipping"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_shipped_id: Mapped[int] = mapped_column(Integer)
