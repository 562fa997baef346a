"""Shared test machinery: dcmtk's tools as the tests call them, byte comparisons, the node's
SCU with the delivery's classification. Ports, waiting and the node subprocess come from
harness/ (the benchmarks use them too) and are re-exported here for the tests."""

from __future__ import annotations

import os
import struct
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from harness.network import free_port as free_port
from harness.network import port_open as port_open
from harness.network import wait_for as wait_for
from harness.node_process import REPO as REPO
from harness.node_process import NodeProcess as NodeProcess
from harness.node_process import Peer as Peer
from harness.node_process import config_toml as config_toml
from harness.tools import ToolMissing, find_tool
from node.config import NodeSettings, PeerSettings
from node.dicom.scu import store
from node.pipeline.delivery import SendOutcome, classify

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_tool(name: str) -> str:
    """Path of a real peer's binary; skip locally when missing, fail in CI."""
    try:
        return find_tool(name)
    except ToolMissing as exc:
        if IN_CI:
            pytest.fail(str(exc))
        pytest.skip(str(exc))


def dcmtk_command(tool: str, port: int, calling: str, *options: str) -> list[str]:
    """A dcmtk tool's command line calling the node on loopback (``options`` before it)."""
    return [
        require_tool(tool),
        *options,
        "-aet",
        calling,
        "-aec",
        "BREASTNODE",
        "127.0.0.1",
        str(port),
    ]


def echoscu(port: int, calling: str = "ECHOSCU", *options: str) -> subprocess.CompletedProcess[str]:
    """dcmtk's echoscu against the node on loopback (``options``: e.g. its TLS ones)."""
    return subprocess.run(
        dcmtk_command("echoscu", port, calling, *options),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def storescu_command(
    port: int, files: Iterable[Path], calling: str = "STORESCU", *options: str
) -> list[str]:
    """dcmtk's storescu command line sending files to the node on loopback."""
    return [*dcmtk_command("storescu", port, calling, *options), *map(str, files)]


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


def send_files(
    node: NodeSettings, peer: PeerSettings, paths: Sequence[Path], timeout_s: float
) -> list[SendOutcome]:
    """The node's SCU over one association, each outcome classified as the delivery would."""
    return [classify(o) for o in store(node, peer, paths, timeout_s)]
