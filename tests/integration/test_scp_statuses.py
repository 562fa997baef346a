"""C-STORE statuses from a real association, on SQLite and PostgreSQL.

Success stores the data set byte for byte; duplicates are answered 0x0000 and not rewritten;
mismatching UIDs give 0xA900, garbage 0xC000, low disk 0xA700, handler failures 0x0110, and
every refusal leaves nothing behind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.uid import generate_uid
from pynetdicom import _config

from models.synthetic import (
    MR_IMAGE,
    SyntheticPatient,
    garbage_file,
    mammogram,
    other_modality,
    write,
)
from node.config import PeerSettings
from node.dicom.status import StoreStatus
from storage.index import InstanceIndex
from storage.records import ReceivedInstance
from tests.support.helpers import dataset_bytes
from tests.support.scp import RunningSCP, running_scp, start_scp

__all__ = ["running_scp"]


def send_file(scp: RunningSCP, path: Path) -> int:
    """Send a file as it is on disk; its File Meta gives the command's UIDs."""
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        assoc = scp.associate()
        assert assoc.is_established
        status = assoc.send_c_store(path)
        assoc.release()
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = False
    return int(status.Status)


def nothing_left_behind(scp: RunningSCP) -> None:
    assert list(scp.store.spool_dir.iterdir()) == []
    assert list(scp.store.stored_objects()) == []
    assert scp.index.studies() == []


def test_success_stores_bytes_as_received(running_scp: RunningSCP, tmp_path: Path) -> None:
    ds = mammogram(SyntheticPatient(), rows=64, columns=48)
    source = write(ds, tmp_path / "in")
    assert send_file(running_scp, source) == StoreStatus.SUCCESS
    [row] = running_scp.index.instances(ds.StudyInstanceUID)
    stored = running_scp.store.path_of(row.file_path)
    assert dataset_bytes(stored) == dataset_bytes(source)
    assert row.sha256 == hashlib.sha256(stored.read_bytes()).hexdigest()
    assert row.file_size == stored.stat().st_size
    assert ds.SOPInstanceUID not in row.file_path
    assert list(running_scp.store.spool_dir.iterdir()) == []


def test_duplicate_is_success_stored_once_not_rewritten(
    running_scp: RunningSCP, tmp_path: Path
) -> None:
    ds = mammogram(SyntheticPatient(), rows=32, columns=32)
    source = write(ds, tmp_path / "in")
    assert send_file(running_scp, source) == StoreStatus.SUCCESS
    [first] = running_scp.index.instances(ds.StudyInstanceUID)
    before = running_scp.store.path_of(first.file_path).stat()
    ds.ImageComments = "SYNTHETIC changed content, same SOP Instance UID"
    assert send_file(running_scp, write(ds, tmp_path / "again")) == StoreStatus.SUCCESS
    [second] = running_scp.index.instances(ds.StudyInstanceUID)
    assert second == first
    after = running_scp.store.path_of(first.file_path).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert len(list(running_scp.store.stored_objects())) == 1
    assert list(running_scp.store.spool_dir.iterdir()) == []


def test_instance_uid_differing_from_command_is_a900(
    running_scp: RunningSCP, tmp_path: Path
) -> None:
    ds = mammogram(SyntheticPatient(), rows=16, columns=16)
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    assert send_file(running_scp, write(ds, tmp_path)) == StoreStatus.DATASET_MISMATCH
    nothing_left_behind(running_scp)


def test_class_uid_differing_from_command_is_a900(running_scp: RunningSCP, tmp_path: Path) -> None:
    ds = mammogram(SyntheticPatient(), rows=16, columns=16)
    ds.SOPClassUID = MR_IMAGE
    assert send_file(running_scp, write(ds, tmp_path)) == StoreStatus.DATASET_MISMATCH
    nothing_left_behind(running_scp)


@pytest.mark.filterwarnings("ignore:Expected explicit VR:UserWarning")  # pydicom on garbage
def test_unparseable_data_set_is_c000(running_scp: RunningSCP, tmp_path: Path) -> None:
    path = garbage_file(tmp_path, b"not a data set at all " * 50)
    status = send_file(running_scp, path)
    assert 0xC000 <= status <= 0xCFFF
    nothing_left_behind(running_scp)


def test_other_sop_classes_are_refused_at_the_presentation_context(
    running_scp: RunningSCP,
) -> None:
    from pynetdicom import AE

    ae = AE(ae_title="TESTSCU")
    ae.add_requested_context(other_modality().SOPClassUID)
    ae.add_requested_context(mammogram(rows=8, columns=8).SOPClassUID)
    assoc = ae.associate("127.0.0.1", running_scp.port, ae_title="BREASTNODE")
    assert assoc.is_established
    accepted = {cx.abstract_syntax for cx in assoc.accepted_contexts}
    rejected = {cx.abstract_syntax for cx in assoc.rejected_contexts}
    assoc.release()
    assert accepted == {"1.2.840.10008.5.1.4.1.1.1.2"}
    assert rejected == {"1.2.840.10008.5.1.4.1.1.2"}


def test_low_disk_space_is_a700_and_leaves_nothing(tmp_path: Path, database_url: str) -> None:
    running = start_scp(tmp_path, database_url, min_free_bytes=1 << 62)
    try:
        ds = mammogram(SyntheticPatient(), rows=16, columns=16)
        assert send_file(running, write(ds, tmp_path / "in")) == StoreStatus.OUT_OF_RESOURCES
        nothing_left_behind(running)
    finally:
        running.scp.stop()
        running.engine.dispose()


class FailingOnceIndex(InstanceIndex):
    """Our own index, made to fail once as a bug would."""

    failed = False

    def add(self, received: ReceivedInstance) -> int:
        if not self.failed:
            self.failed = True
            raise RuntimeError("simulated handler bug")
        return super().add(received)


def test_handler_error_is_a_failure_and_the_association_survives(
    tmp_path: Path, database_url: str
) -> None:
    from storage.db import open_engine

    engine = open_engine(database_url)
    running = start_scp(tmp_path, database_url, index=FailingOnceIndex(engine))
    try:
        assoc = running.associate()
        assert assoc.is_established
        first = mammogram(SyntheticPatient(), rows=16, columns=16)
        second = mammogram(SyntheticPatient(), rows=16, columns=16)
        assert assoc.send_c_store(first).Status == StoreStatus.PROCESSING_FAILURE
        assert assoc.is_established
        assert assoc.send_c_store(second).Status == StoreStatus.SUCCESS
        assoc.release()
        assert list(running.store.spool_dir.iterdir()) == []
        assert len(list(running.store.stored_objects())) == 1
        assert running.index.contains(second.SOPInstanceUID)
        assert not running.index.contains(first.SOPInstanceUID)
    finally:
        running.scp.stop()
        running.engine.dispose()
        engine.dispose()


@pytest.fixture
def guarded_scp(tmp_path: Path) -> Iterator[RunningSCP]:
    running = start_scp(
        tmp_path,
        f"sqlite:///{tmp_path / 'i.sqlite3'}",
        peers=[
            PeerSettings(name="ok", ae_title="TESTSCU", host="127.0.0.1"),
            PeerSettings(name="far", ae_title="FARSCU", host="10.99.0.0/16"),
        ],
    )
    yield running
    running.scp.stop()
    running.engine.dispose()


@pytest.mark.parametrize(
    ("calling", "called", "reason"),
    [
        ("STRANGER", "BREASTNODE", "unknown calling AE"),
        ("FARSCU", "BREASTNODE", "known AE from the wrong host"),
        ("TESTSCU", "SOMEONEELSE", "wrong called AE"),
    ],
)
def test_unknown_callers_are_rejected(
    guarded_scp: RunningSCP,
    calling: str,
    called: str,
    reason: str,
) -> None:
    assoc = guarded_scp.associate(ae_title=calling, called=called)
    assert assoc.is_rejected, reason
    assert guarded_scp.associate().is_established  # the node is still up for allowed peers


def test_echo(running_scp: RunningSCP) -> None:
    assoc = running_scp.associate()
    assert assoc.send_c_echo().Status == 0
    assoc.release()
