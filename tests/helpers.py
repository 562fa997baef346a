"""Shared test machinery: free ports, real peers, a node subprocess, byte comparisons."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from node.config import NodeSettings, PeerSettings
from node.dicom.scu import store
from node.pipeline.delivery import SendOutcome, classify

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_tool(name: str) -> str:
    """Path of a real peer's binary; skip locally when missing, fail in CI."""
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None
    )
    if found:
        return found
    message = f"{name} is not installed (make test installs it when run as root)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def echoscu(port: int, calling: str = "ECHOSCU") -> subprocess.CompletedProcess[str]:
    """dcmtk's echoscu against the node on loopback."""
    return subprocess.run(
        [require_tool("echoscu"), "-aet", calling, "-aec", "BREASTNODE", "127.0.0.1", str(port)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def storescu_command(
    port: int, files: Iterable[Path], calling: str = "STORESCU", *options: str
) -> list[str]:
    """dcmtk's storescu command line sending files to the node on loopback."""
    return [
        require_tool("storescu"),
        *options,
        "-aet",
        calling,
        "-aec",
        "BREASTNODE",
        "127.0.0.1",
        str(port),
        *map(str, files),
    ]


def storescu(
    port: int, files: Iterable[Path], calling: str = "STORESCU", *options: str
) -> subprocess.CompletedProcess[str]:
    """Run storescu (:func:`storescu_command`) to the end."""
    return subprocess.run(
        storescu_command(port, files, calling, *options),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


_PORTS_GIVEN: set[int] = set()


def free_port() -> int:
    """A free loopback port, never one this run has handed out before: a test takes several
    before starting anything, and the system may offer a just-closed one again."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def dataset_bytes(path: Path) -> bytes:
    """The data set part of a Part 10 file (everything after the File Meta Information)."""
    raw = path.read_bytes()
    assert raw[128:132] == b"DICM", f"{path} is not a DICOM Part 10 file"
    offset = 132
    # File Meta elements are explicit VR little endian; walk them to the first non-0002 tag.
    while struct.unpack("<H", raw[offset : offset + 2])[0] == 0x0002:
        vr = raw[offset + 4 : offset + 6]
        if vr in LONG_LENGTH_VRS:
            length = struct.unpack("<I", raw[offset + 8 : offset + 12])[0]
            offset += 12 + length
        else:
            length = struct.unpack("<H", raw[offset + 6 : offset + 8])[0]
            offset += 8 + length
    return raw[offset:]


LONG_LENGTH_VRS = {
    b"OB",
    b"OD",
    b"OF",
    b"OL",
    b"OV",
    b"OW",
    b"SQ",
    b"SV",
    b"UC",
    b"UN",
    b"UR",
    b"UT",
    b"UV",
}


@dataclass
class Peer:
    name: str
    ae_title: str
    host: str = "127.0.0.1"
    port: int | None = None


def config_toml(
    root: Path,
    port: int,
    peers: Iterable[Peer],
    *,
    ae_title: str = "BREASTNODE",
    database_url: str = "",
    min_free_bytes: int = 0,
    extra: str = "",
    metrics_port: int = 0,
) -> str:
    lines = [
        "[node]",
        f'ae_title = "{ae_title}"',
        'host = "127.0.0.1"',
        f"port = {port}",
        "[storage]",
        f'root = "{root}"',
        f'database_url = "{database_url}"',
        f"min_free_bytes = {min_free_bytes}",
        "[metrics]",
        f"port = {metrics_port}",
    ]
    for peer in peers:
        lines += [
            "[[peers]]",
            f'name = "{peer.name}"',
            f'ae_title = "{peer.ae_title}"',
            f'host = "{peer.host}"',
        ]
        if peer.port is not None:
            lines.append(f"port = {peer.port}")
    if "[pipeline]" not in extra:  # a test's node analyses only when the test says so
        lines += ["[pipeline]", 'analysis = "none"']
    return "\n".join(lines) + "\n" + extra


@dataclass
class NodeProcess:
    """``breastnode serve`` as a real subprocess, logging at DEBUG to a file."""

    config: Path
    root: Path
    port: int
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    log_level: str = "DEBUG"
    process: subprocess.Popen[bytes] | None = None
    _children: list[int] = field(default_factory=list)

    def start(self, timeout: float = 30.0) -> NodeProcess:
        env = os.environ | {"PYTHONUNBUFFERED": "1"} | self.env
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "node",
                    "--config",
                    str(self.config),
                    "--log-level",
                    self.log_level,
                    "serve",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=REPO,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"node exited at start-up:\n{self.log.read_text()}")
            if port_open(self.port):
                return self
            time.sleep(0.05)
        raise AssertionError(f"node did not listen within {timeout} s:\n{self.log.read_text()}")

    def children(self) -> list[int]:
        """Process ids of the node's receiver processes (recorded while it runs)."""
        assert self.process is not None
        found = set(self._children)
        with contextlib.suppress(psutil.NoSuchProcess):
            found |= {c.pid for c in psutil.Process(self.process.pid).children(recursive=True)}
        self._children = sorted(found)
        return self._children

    def children_alive(self, timeout: float = 5.0) -> list[int]:
        """Receiver processes still running after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            alive = [
                pid
                for pid in self._children
                if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
            ]
            if not alive or time.monotonic() > deadline:
                return alive
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.children()
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.children()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return int(self.process.returncode or 0)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "node", "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            env=os.environ | self.env,
            cwd=REPO,
            timeout=60,
            check=False,
        )


def send_files(
    node: NodeSettings, peer: PeerSettings, paths: Sequence[Path], timeout_s: float
) -> list[SendOutcome]:
    """The node's SCU over one association, each outcome classified as the delivery would."""
    return [classify(o) for o in store(node, peer, paths, timeout_s)]
