"""DICOM TLS benchmark: what TLS costs the node and Orthanc, and what silent connections do
to a real association on each.

1. Ingest: synthetic mammograms (new ones for each run, so that none is a duplicate) sent
   with dcmtk's storescu over one association, in plain DICOM and over TLS (+tls, the BCP 195
   non-downgrading profile), to the node and to Orthanc (DicomTlsEnabled), after one warm-up
   C-ECHO each; --repeats runs of each, plain and TLS taking turns to go first; the median
   wall times and the TLS/plain ratios.
2. Silent connections: N TCP connections that connect to the TLS port and send nothing,
   then one real TLS C-ECHO (echoscu +tls): its latency on each, capped at --cap seconds.

Certificates come from a site CA made with openssl for the run (harness.pki). Figures are
printed, never asserted.

    python bench/tls.py [--instances 20] [--rows 2048 --columns 1536] [--silent 50]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pydicom.uid import generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.network import free_port
from harness.node_process import NodeProcess, Peer, config_toml
from harness.orthanc import Orthanc, OrthancTLS
from harness.pki import SitePki, dcmtk_tls, make_site_pki, tls_section
from harness.tools import find_tool
from models.synthetic import SyntheticPatient, mammogram, write


def make_instances(folder: Path, count: int, rows: int, columns: int) -> list[Path]:
    patient, study = SyntheticPatient(), generate_uid()
    return [
        write(
            mammogram(patient, study_uid=study, rows=rows, columns=columns, seed=n),
            folder,
            f"mg-{n:03d}.dcm",
        )
        for n in range(count)
    ]


def run(command: list[str], timeout: float) -> float:
    """Seconds the command took; raises when it fails."""
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {(result.stderr + result.stdout)[-500:]}")
    return elapsed


def dcmtk(tool: str, port: int, called: str, tls: list[str], *files: Path) -> list[str]:
    calling = "MODALITY" if tls else "LEGACY"
    return [find_tool(tool), *tls, "-aet", calling, "-aec", called, "127.0.0.1", str(port)] + [
        str(f) for f in files
    ]


def silent_echo_latency(
    port: int, called: str, tls: list[str], silent: int, cap: float
) -> float | None:
    """Latency of a TLS C-ECHO behind ``silent`` connections that say nothing; None when it
    did not succeed within ``cap`` seconds."""
    sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(silent)]
    try:
        return run(dcmtk("echoscu", port, called, tls), cap)
    except (RuntimeError, subprocess.TimeoutExpired):
        return None
    finally:
        for sock in sockets:
            sock.close()


@contextmanager
def node(folder: Path, site: SitePki) -> Iterator[tuple[int, int]]:
    """The node: TLS on one port, plain DICOM on another; yields (tls port, plain port)."""
    port, plain = free_port(), free_port()
    peers = [
        Peer("modality", "MODALITY", tls=True, certificate_name="modality-a.test"),
        Peer("legacy", "LEGACY"),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.toml"
    extra = tls_section(site.node, site.ca, plain_port=plain)
    config.write_text(config_toml(folder / "store", port, peers, extra=extra))
    process = NodeProcess(config, folder / "store", port, folder / "node.log", log_level="INFO")
    process.start(120)
    try:
        yield port, plain
    finally:
        process.stop()


@contextmanager
def orthanc(folder: Path, site: SitePki | None) -> Iterator[int]:
    tls = (
        None
        if site is None
        else OrthancTLS(site.pacs.certificate, site.pacs.key, site.ca.certificate)
    )
    server = Orthanc(folder, tls=tls).start()
    try:
        yield server.dicom_port
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--rows", type=int, default=2048)
    parser.add_argument("--columns", type=int, default=1536)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--silent", type=int, default=50)
    parser.add_argument("--cap", type=float, default=60.0, help="seconds to wait for the echo")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-tls-"))
    site = make_site_pki(work / "pki")
    client = dcmtk_tls(site.modality_a, site.ca)
    megabytes = 0.0

    def store(port: int, called: str, tls: list[str]) -> float:
        nonlocal megabytes
        files = make_instances(work / "in", args.instances, args.rows, args.columns)
        megabytes = sum(f.stat().st_size for f in files) / 2**20
        run(dcmtk("echoscu", port, called, tls), 60)  # warm-up
        try:
            return run(dcmtk("storescu", port, called, tls, *files), 1800)
        finally:
            shutil.rmtree(work / "in")

    def runs(plain: Callable[[], float], tls: Callable[[], float]) -> tuple[float, float]:
        times: dict[str, list[float]] = {"plain": [], "tls": []}
        for turn in range(args.repeats):
            for mode, send in [("plain", plain), ("tls", tls)][:: 1 if turn % 2 == 0 else -1]:
                times[mode].append(send())
        return statistics.median(times["plain"]), statistics.median(times["tls"])

    results: dict[str, float] = {}
    with node(work / "node", site) as (port, plain):
        results["node plain"], results["node TLS"] = runs(
            lambda: store(plain, "BREASTNODE", []), lambda: store(port, "BREASTNODE", client)
        )
        node_silent = silent_echo_latency(port, "BREASTNODE", client, args.silent, args.cap)
    shutil.rmtree(work / "node", ignore_errors=True)
    with orthanc(work / "orthanc", site) as port, orthanc(work / "orthanc-plain", None) as plain:
        results["Orthanc plain"], results["Orthanc TLS"] = runs(
            lambda: store(plain, "ORTHANC", []), lambda: store(port, "ORTHANC", client)
        )
        orthanc_silent = silent_echo_latency(port, "ORTHANC", client, args.silent, args.cap)
    print(f"{args.instances} mammograms ({megabytes:.0f} MB) per run, one association each")
    print(f"median of {args.repeats} runs:")

    for name, seconds in results.items():
        print(f"  {name:14s} {seconds:7.2f} s  {megabytes / seconds:7.1f} MB/s")
    for who in ("node", "Orthanc"):
        ratio = results[f"{who} TLS"] / results[f"{who} plain"]
        print(f"  {who}: TLS takes {ratio:.2f}x the plain time")
    for who, latency in (("node", node_silent), ("Orthanc", orthanc_silent)):
        shown = f"{latency:.3f} s" if latency is not None else f"no answer within {args.cap:g} s"
        print(f"TLS C-ECHO to {who} behind {args.silent} silent connections: {shown}")


if __name__ == "__main__":
    main()
