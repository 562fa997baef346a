"""The connection drops while an instance's row is committed: the outcome is unknown.

Removing the file then (as a plain failure would) can leave a committed row without its file,
which the sender's retry turns into an acknowledged instance that is gone. The row's fate is
asked once the index answers: a row that was committed keeps its file and the instance is
acknowledged; a row that was not has its file removed, so no orphan is left either.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from models.synthetic import SyntheticPatient, mammogram
from node.dicom.status import StoreStatus
from storage.db import open_engine
from storage.errors import StorageError
from storage.index import InstanceIndex
from storage.records import ReceivedInstance
from tests.support.scp import RunningSCP, start_scp


def connection_lost() -> StorageError:
    dropped = OperationalError("COMMIT", {}, Exception("server closed the connection"))
    error = StorageError("index unavailable: OperationalError")
    error.__cause__ = dropped
    return error


class LostReplyIndex(InstanceIndex):
    """Our index, whose connection drops at the first commit: after the row was written
    (``committed``) or before; ``silent`` while the database cannot be asked."""

    def __init__(self, engine: Engine, committed: bool) -> None:
        super().__init__(engine)
        self.committed = committed
        self.silent = True
        self.dropped = False

    def add(self, received: ReceivedInstance) -> int:
        if self.dropped:
            return super().add(received)
        self.dropped = True
        if self.committed:
            super().add(received)
        raise connection_lost()

    def has_file(self, relative_path: str) -> bool:
        if self.silent and not self.committed:
            raise connection_lost()
        return super().has_file(relative_path)


def files_and_rows(running: RunningSCP) -> tuple[set[str], set[str]]:
    return set(running.store.stored_objects()), running.index.file_paths()


def scp_with(tmp_path: Path, database_url: str, committed: bool) -> tuple[RunningSCP, Engine]:
    engine = open_engine(database_url)
    index = LostReplyIndex(engine, committed)
    return start_scp(tmp_path, database_url, index=index), engine


def test_a_row_committed_before_the_reply_was_lost_keeps_its_file(
    tmp_path: Path, database_url: str
) -> None:
    running, engine = scp_with(tmp_path, database_url, committed=True)
    try:
        assoc = running.associate()
        first = mammogram(SyntheticPatient(), rows=16, columns=16)
        assert assoc.send_c_store(first).Status == StoreStatus.SUCCESS
        assert assoc.send_c_store(first).Status == StoreStatus.SUCCESS  # a retry: duplicate
        assoc.release()
        files, rows = files_and_rows(running)
        assert len(rows) == 1 and files == rows, "an index row without its file"
    finally:
        running.scp.stop()
        running.engine.dispose()
        engine.dispose()


def test_a_row_not_committed_has_its_file_removed_once_the_index_answers(
    tmp_path: Path, database_url: str
) -> None:
    running, engine = scp_with(tmp_path, database_url, committed=False)
    index = running.index
    assert isinstance(index, LostReplyIndex)
    try:
        assoc = running.associate()
        first = mammogram(SyntheticPatient(), rows=16, columns=16)
        assert assoc.send_c_store(first).Status == StoreStatus.OUT_OF_RESOURCES
        files, rows = files_and_rows(running)
        assert rows == set() and len(files) == 1, "kept until the index can say"

        index.silent = False  # the database is back; the sender retries
        assert assoc.send_c_store(first).Status == StoreStatus.SUCCESS
        assoc.release()
        files, rows = files_and_rows(running)
        assert len(rows) == 1 and files == rows, "an orphan file was left"
        assert list(running.store.spool_dir.iterdir()) == []
    finally:
        running.scp.stop()
        running.engine.dispose()
        engine.dispose()
