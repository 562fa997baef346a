"""Receiver worker processes: sharing the port, replacement, shutdown, port conflicts."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from models.synthetic import SyntheticPatient, mammogram, write
from tests.conftest import NodeFactory
from tests.support.helpers import (
    REPO,
    Peer,
    config_toml,
    echoscu,
    free_port,
    storescu_command,
    wait_for,
)


def listening_pids(log: Path) -> list[int]:
    return [int(p) for p in re.findall(r"receiver (\d+) ready", log.read_text())]


def test_workers_share_the_port_and_stop_together(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    node = node_factory(receivers=3)
    wait_for(lambda: len(set(listening_pids(node.log))) == 3)
    assert len(node.children()) >= 3
    files = [
        write(mammogram(SyntheticPatient(), rows=64, columns=64, seed=n), tmp_path)
        for n in range(6)
    ]
    senders = [subprocess.Popen(storescu_command(node.port, [path])) for path in files]
    assert [s.wait(60) for s in senders] == [0] * 6
    studies = node.cli("studies", "--json")
    assert studies.stdout.count("study_instance_uid") == 6
    assert node.stop() == 0
    assert node.children_alive() == []


def test_a_dead_worker_is_replaced_and_its_spool_swept(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    node = node_factory(receivers=2)
    wait_for(lambda: len(listening_pids(node.log)) == 2)
    victim = listening_pids(node.log)[0]
    leftover = node.root / "spool" / f"rx-{victim}-partial.dcm"
    leftover.write_bytes(b"partial")
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(listening_pids(node.log)) == 3, timeout=30)
    assert not leftover.exists()
    assert f"receiver {victim} exited" in node.log.read_text()
    echo = echoscu(node.port)
    assert echo.returncode == 0


def test_a_port_already_in_use_is_refused(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(config_toml(tmp_path / "store", port, [Peer("s", "STORESCU")]))
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        for workers in ("1", "2"):
            result = subprocess.run(
                [sys.executable, "-m", "node", "--config", str(config), "serve"],
                capture_output=True,
                text=True,
                timeout=60,
                cwd=REPO,
                check=False,
                env=os.environ | {"BREASTNODE_NODE__RECEIVERS": workers},
            )
            assert result.returncode == 1, workers
            assert f"port {port}" in result.stderr, result.stderr
