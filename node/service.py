"""Start-up and shut-down of the running node, in the order durability needs.

Schema migrations, then reconciliation of the file store with the index (a crash may have
left spool files or unacknowledged objects), and only then the SCP starts listening.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from node.config import Settings
from node.dicom.access import PeerPolicy
from node.dicom.ingest import Ingestor
from node.dicom.scp import StorageSCP
from node.dicom.spool import spool_into
from node.errors import NodeError
from storage.db import open_engine
from storage.filestore import FileStore
from storage.index import InstanceIndex
from storage.migrate import upgrade
from storage.recovery import reconcile

logger = logging.getLogger(__name__)


def open_index(settings: Settings) -> tuple[Engine, InstanceIndex]:
    """Open the index database and bring its schema up to date."""
    try:
        engine = open_engine(settings.database_url)
        upgrade(engine)
    except (SQLAlchemyError, OSError) as exc:
        raise NodeError(f"cannot open the index database: {type(exc).__name__}: {exc}") from exc
    return engine, InstanceIndex(engine)


class Node:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = FileStore(settings.storage_root)
        self.engine: Engine | None = None
        self.scp: StorageSCP | None = None
        self.address: tuple[str, int] | None = None

    def start(self) -> tuple[str, int]:
        try:
            self.store.prepare()
        except OSError as exc:
            raise NodeError(f"cannot prepare the store at {self.store.root}: {exc}") from exc
        self.engine, index = open_index(self.settings)
        result = reconcile(self.store, index)
        logger.info(
            "store reconciled: %d spool file(s) and %d unindexed object(s) removed",
            result.spool_files_removed,
            result.orphan_files_removed,
        )
        if result.missing_files:
            logger.error(
                "%d indexed object(s) missing from the store, e.g. %s",
                len(result.missing_files),
                result.missing_files[0],
            )
        spool_into(self.store.spool_dir)
        ingestor = Ingestor(self.store, index, self.settings.storage.min_free_bytes)
        self.scp = StorageSCP(self.settings.node, ingestor, PeerPolicy(self.settings.peers))
        self.address = self.scp.start()
        logger.info(
            "BreastNode listening as AE %r on %s:%d (index: %s, %d peer(s) allowed)",
            self.settings.node.ae_title,
            *self.address,
            self.engine.dialect.name,
            len(self.settings.peers),
        )
        return self.address

    def stop(self) -> None:
        if self.scp is not None:
            self.scp.stop()
            self.scp = None
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None
        logger.info("BreastNode stopped")


def serve(settings: Settings) -> int:
    """Run until SIGINT or SIGTERM."""
    stopping = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("received %s, shutting down", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    node = Node(settings)
    node.start()
    try:
        stopping.wait()
    finally:
        node.stop()
    return 0
