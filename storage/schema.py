"""The whole schema's metadata: every table module imported, for migrations and checks."""

from __future__ import annotations

# Importing a table module registers its tables on Base.metadata.
import storage.audit_tables
import storage.outbox_tables
import storage.queue_tables
from storage.tables import Base

metadata = Base.metadata
TABLE_MODULES = (storage.audit_tables, storage.outbox_tables, storage.queue_tables)
