"""Retention: remove received images older than the configured age.

The index row stays and says when its file was purged; results derived from the study say
so too. The database is updated before files are removed: a crash in between leaves files
that the index no longer claims, which start-up reconciliation removes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from storage.filestore import FileStore
from storage.outbox_tables import ResultObject
from storage.tables import Instance, Series, Study

BATCH = 500


def purge_received_before(engine: Engine, store: FileStore, cutoff: datetime, now: datetime) -> int:
    """Purge instances received before ``cutoff``; returns how many were purged."""
    purged = 0
    while True:
        with Session(engine) as session, session.begin():
            rows = session.execute(
                select(Instance.id, Instance.file_path, Study.study_instance_uid)
                .join(Series, Instance.series_fk == Series.id)
                .join(Study, Series.study_fk == Study.id)
                .where(Instance.received_at < cutoff, Instance.purged_at.is_(None))
                .order_by(Instance.id)
                .limit(BATCH)
            ).all()
            if not rows:
                return purged
            session.execute(
                update(Instance).where(Instance.id.in_([r[0] for r in rows])).values(purged_at=now)
            )
            session.execute(
                update(ResultObject)
                .where(
                    ResultObject.study_instance_uid.in_({r[2] for r in rows}),
                    ResultObject.source_purged_at.is_(None),
                )
                .values(source_purged_at=now)
            )
        for _id, relative, _study in rows:
            store.remove(relative)
        purged += len(rows)
