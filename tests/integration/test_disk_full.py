"""A full disk, for real: every C-STORE answered 0xA700, nothing partial, and ingest back
without a restart once there is room again.

The store lives on a small tmpfs mounted for the test (the index elsewhere), so the kernel
itself says ENOSPC: while a data set streams into the spool, when the spool file is created,
and when the file is moved into the store. Free space below ``min_free_bytes`` is refused the
same way before the disk is full.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pynetdicom.association import Association

from models.synthetic import SyntheticPatient, mammogram
from node.dicom.status import StoreStatus
from tests.support.scp import RunningSCP, start_scp
from tests.support.small_fs import SmallFileSystem, small_filesystem

__all__ = ["small_filesystem"]

MiB = 1 << 20
FS_SIZE = 32 * MiB
RESERVE = 8 * MiB
NO_STATUS = -1
PATIENT = SyntheticPatient()

MountSmall = Callable[..., SmallFileSystem]


@functools.lru_cache(maxsize=8)
def image(seed: int, pixel_bytes: int = 8192) -> Dataset:
    """An MG image with about ``pixel_bytes`` of 16-bit pixel data (made once a module)."""
    columns = 64 if pixel_bytes <= 8192 else 2000
    return mammogram(PATIENT, rows=pixel_bytes // (2 * columns), columns=columns, seed=seed)


def send(assoc: Association, ds: Dataset) -> int:
    """The status answered, or NO_STATUS when the association died without one."""
    if not assoc.is_established:
        return NO_STATUS
    return int(assoc.send_c_store(ds).get("Status", NO_STATUS))


def stored_and_spooled(running: RunningSCP) -> tuple[int, list[Path]]:
    return len(list(running.store.stored_objects())), list(running.store.spool_dir.iterdir())


@pytest.fixture
def scp_on(database_url: str) -> Iterator[Callable[[Path, int], RunningSCP]]:
    """An in-process Storage SCP whose store is on the given file system."""
    started: list[RunningSCP] = []

    def start(folder: Path, min_free_bytes: int) -> RunningSCP:
        running = start_scp(folder, database_url, min_free_bytes=min_free_bytes)
        started.append(running)
        return running

    yield start
    for running in started:
        running.scp.stop()
        running.engine.dispose()


def test_below_the_reserve_every_store_is_a700_until_space_returns(
    small_filesystem: MountSmall, scp_on: Callable[[Path, int], RunningSCP]
) -> None:
    fs = small_filesystem(FS_SIZE)
    running = scp_on(fs.path, RESERVE)
    assoc = running.associate()
    assert send(assoc, image(0)) == StoreStatus.SUCCESS

    ballast = fs.fill_to(RESERVE // 2)
    refused = [send(assoc, image(n)) for n in (1, 2, 3)] + [send(assoc, image(4, 6 * MiB))]
    assert refused == [StoreStatus.OUT_OF_RESOURCES] * 4
    assert stored_and_spooled(running) == (1, [])

    ballast.unlink()  # room again: the same association, no restart
    resumed = [send(assoc, image(n)) for n in (1, 2, 3)] + [send(assoc, image(4, 6 * MiB))]
    assert resumed == [StoreStatus.SUCCESS] * 4
    assert stored_and_spooled(running) == (5, [])
    assoc.release()


@pytest.mark.parametrize(
    ("reserve", "reason"),
    [(0, "No space left on device"), (RESERVE, "free space below [storage] min_free_bytes")],
    ids=["file-system-full", "reserve-reached"],
)
def test_an_object_larger_than_the_free_space_is_a700_and_the_next_store_works(
    small_filesystem: MountSmall,
    scp_on: Callable[[Path, int], RunningSCP],
    caplog: pytest.LogCaptureFixture,
    reserve: int,
    reason: str,
) -> None:
    fs = small_filesystem(FS_SIZE)
    running = scp_on(fs.path, reserve)
    free_before = fs.free_bytes()
    assoc = running.associate()

    with caplog.at_level(logging.ERROR, logger="node.dicom.ingest"):
        assert send(assoc, image(1, 40 * MiB)) == StoreStatus.OUT_OF_RESOURCES
    assert any(reason in r.getMessage() for r in caplog.records), caplog.text
    assert stored_and_spooled(running) == (0, [])
    assert fs.free_bytes() >= free_before - MiB, "the refused object's bytes were not freed"

    assert send(assoc, image(2)) == StoreStatus.SUCCESS
    assert stored_and_spooled(running) == (1, [])
    assoc.release()


@pytest.mark.parametrize("spare_inodes", [0, 1], ids=["spool-file", "store-folder"])
def test_no_inode_for_the_spool_file_or_the_store_folder_is_a700(
    small_filesystem: MountSmall,
    scp_on: Callable[[Path, int], RunningSCP],
    spare_inodes: int,
) -> None:
    """0 spare inodes: the spool file cannot be created; 1: it can, but the day's folder in
    the store cannot, so the move into the store fails."""
    fs = small_filesystem(FS_SIZE)
    running = scp_on(fs.path, 0)
    fs.remount(f"nr_inodes={_inodes_used(fs) + spare_inodes}")
    assoc = running.associate()

    assert send(assoc, image(1)) == StoreStatus.OUT_OF_RESOURCES
    assert stored_and_spooled(running) == (0, [])

    fs.remount("nr_inodes=1024")
    assert send(assoc, image(1)) == StoreStatus.SUCCESS
    assert stored_and_spooled(running) == (1, [])
    assoc.release()


def _inodes_used(fs: SmallFileSystem) -> int:
    stats = os.statvfs(fs.path)
    return stats.f_files - stats.f_ffree
