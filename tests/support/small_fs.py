"""A real, small file system for the disk-full tests: a tmpfs mounted for one test.

A full disk is played for real (the kernel answers ENOSPC), not by faking a free-space
reading. Mounting needs root with CAP_SYS_ADMIN; elsewhere the tests skip, saying why, and in
CI a runner that has both but cannot mount fails them.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.helpers import IN_CI

CAP_SYS_ADMIN = 21


def may_mount() -> bool:
    """Root with CAP_SYS_ADMIN in its effective set (what mounting a tmpfs needs)."""
    if os.geteuid() != 0:
        return False
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> CAP_SYS_ADMIN & 1)
    return False


@dataclass
class SmallFileSystem:
    path: Path

    def free_bytes(self) -> int:
        stats = os.statvfs(self.path)
        return stats.f_bavail * stats.f_frsize

    def remount(self, options: str) -> None:
        """Change its size or inode count in place (``size=...``, ``nr_inodes=...``)."""
        _mount(["-o", f"remount,{options}", str(self.path)])

    def fill_to(self, free: int) -> Path:
        """A ballast file that leaves ``free`` bytes (within a page) free; delete it to give
        the space back."""
        ballast = self.path / "ballast"
        size = max(0, self.free_bytes() - free)
        with ballast.open("wb") as handle:
            handle.truncate(0)
            for _ in range(size // (1 << 20)):
                handle.write(b"\0" * (1 << 20))
            handle.write(b"\0" * (size % (1 << 20)))
        return ballast


def _mount(arguments: list[str]) -> None:
    subprocess.run(["mount", *arguments], check=True, capture_output=True, text=True)


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Callable[..., SmallFileSystem]]:
    """Mount a tmpfs of ``size`` bytes (and ``inodes`` inodes) under the test's folder."""
    mounted: list[Path] = []

    def mount(size: int, inodes: int | None = None) -> SmallFileSystem:
        if not may_mount():
            pytest.skip("mounting a small file system needs root with CAP_SYS_ADMIN")
        path = tmp_path / f"fs{len(mounted)}"
        path.mkdir()
        options = f"size={size}" + (f",nr_inodes={inodes}" if inodes else "")
        try:
            _mount(["-t", "tmpfs", "-o", options, "tmpfs", str(path)])
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            message = f"cannot mount a tmpfs although root with CAP_SYS_ADMIN: {detail}"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
        mounted.append(path)
        return SmallFileSystem(path)

    yield mount
    for path in mounted:
        subprocess.run(["umount", "--lazy", str(path)], check=False, capture_output=True)
