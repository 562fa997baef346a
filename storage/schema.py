"""The whole schema's metadata: every table module imported, for migrations and checks."""

from __future__ import annotations

import storage.queue_tables  # noqa: F401  (registers its tables on Base.metadata)
from storage.tables import Base

metadata = Base.metadata
