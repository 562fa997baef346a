"""The storage-root lock: who may start on a root, who may reconcile it, and that a killed
holder never leaves it locked."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from node.runtime.root_lock import RootBusy, RootLock


def test_a_second_exclusive_holder_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with RootLock(root, shared=False) as first:
        assert first.alone
        with pytest.raises(RootBusy) as refused:
            RootLock(root, shared=False).acquire()
        assert f"pid {os.getpid()}" in str(refused.value)
        assert str(root) in str(refused.value)
        assert "shared = true" in str(refused.value)
    with RootLock(root, shared=False) as again:  # released on exit
        assert again.alone


def test_shared_holders_coexist_and_only_the_first_reconciles(tmp_path: Path) -> None:
    with RootLock(tmp_path, shared=True) as first:
        assert first.alone
        first.started()
        with RootLock(tmp_path, shared=True) as second:
            assert not second.alone, "a node joining running ones must not sweep their spool"
            second.started()
            with pytest.raises(RootBusy, match="nodes that share it"):
                RootLock(tmp_path, shared=False).acquire()


def test_a_shared_start_is_refused_by_an_exclusive_node(
    tmp_path: Path,
) -> None:
    with RootLock(tmp_path, shared=False), pytest.raises(RootBusy, match="another node"):
        RootLock(tmp_path, shared=True).acquire()


def _hold(root: Path, ready: Any) -> None:
    lock = RootLock(root, shared=False)
    lock.acquire()
    ready.set()
    signal.pause()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    holder = context.Process(target=_hold, args=(tmp_path, ready))
    holder.start()
    try:
        assert ready.wait(60)
        with pytest.raises(RootBusy, match=f"pid {holder.pid}"):
            RootLock(tmp_path, shared=False).acquire()
    finally:
        holder.kill()
        holder.join(10)
    with RootLock(tmp_path, shared=False) as lock:
        assert lock.alone


def test_shared_start_ups_take_turns(tmp_path: Path) -> None:
    """A node joining a shared root waits while another one is still reconciling it."""
    first = RootLock(tmp_path, shared=True)
    first.acquire()
    second = RootLock(tmp_path, shared=True)
    joined = threading.Thread(target=second.acquire)
    joined.start()
    joined.join(0.5)
    assert joined.is_alive(), "joined while the first node was still starting"
    first.started()
    joined.join(10)
    assert not joined.is_alive() and first.alone and not second.alone
    second.release()
    first.release()
