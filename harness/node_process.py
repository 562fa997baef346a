"""``breastnode serve`` as a real subprocess with its own configuration file and log."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from harness.network import port_open

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Peer:
    name: str
    ae_title: str
    host: str = "127.0.0.1"
    port: int | None = None
    tls: bool = False
    certificate_name: str | None = None


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
        if peer.tls:
            lines.append("tls = true")
        if peer.certificate_name is not None:
            lines.append(f'certificate_name = "{peer.certificate_name}"')
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
        """A command against this node's configuration, run in the calling process."""
        from harness.cli import run_cli

        return run_cli(["--config", str(self.config), *args], env=self.env, cwd=REPO)
