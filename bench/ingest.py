"""Ingest benchmark: the node against Orthanc and a bare pynetdicom SCP, and peak memory.

Sends the same synthetic 3328x2560 16-bit mammograms with dcmtk's storescu over 1 and 4
parallel associations to each receiver (a fresh, empty one per run) and prints wall times
and the ratios node/Orthanc and node/bare. Then sends one ~500 MB tomosynthesis object to
the node and prints its peak RSS above idle. Figures are printed, never asserted.

    python bench/ingest.py [--instances 40] [--workdir DIR] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.network import free_port, port_open, wait_for
from harness.node_process import NodeProcess, Peer, config_toml
from harness.orthanc import Orthanc
from harness.tools import find_tool
from models.synthetic import (
    BREAST_TOMOSYNTHESIS,
    SyntheticPatient,
    mammogram,
    write,
)

ROWS, COLUMNS = 3328, 2560
NODE_MAX_PDU = 4194304


def make_instances(folder: Path, count: int) -> list[Path]:
    existing = sorted(folder.glob("mg-*.dcm"))
    if len(existing) == count:
        return existing
    shutil.rmtree(folder, ignore_errors=True)
    patient = SyntheticPatient()
    study = generate_uid()
    paths = []
    for n in range(count):
        lat, view = "LR"[n % 2], ("CC", "MLO")[(n // 2) % 2]
        ds = mammogram(
            patient, study_uid=study, laterality=lat, view=view, rows=ROWS, columns=COLUMNS, seed=n
        )
        paths.append(write(ds, folder, f"mg-{n:03d}.dcm"))
    return paths


def make_large(folder: Path, target_bytes: int = 500 * 2**20) -> Path:
    path = folder / "tomo-500mb.dcm"
    if path.exists() and path.stat().st_size >= target_bytes:
        return path
    frames = -(-target_bytes // (ROWS * COLUMNS * 2))
    ds: Dataset = mammogram(SyntheticPatient(), rows=8, columns=8, sop_class=BREAST_TOMOSYNTHESIS)
    ds.Modality = "MG"
    ds.NumberOfFrames = frames
    ds.Rows, ds.Columns = ROWS, COLUMNS
    rng = np.random.default_rng(7)
    frame = rng.integers(0, 16383, size=(ROWS, COLUMNS), dtype=np.uint16).tobytes()
    ds.PixelData = frame * frames
    return write(ds, folder, path.name)


def storescu_wall_time(port: int, called: str, paths: list[Path], parallel: int) -> float:
    storescu = find_tool("storescu")
    chunks = [paths[i::parallel] for i in range(parallel)]
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [
                storescu,
                "-R",
                "-aet",
                "STORESCU",
                "-aec",
                called,
                "127.0.0.1",
                str(port),
                *map(str, chunk),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for chunk in chunks
    ]
    for process in processes:
        _, err = process.communicate(timeout=1800)
        if process.returncode != 0:
            raise RuntimeError(f"storescu failed: {err.decode(errors='replace')[-500:]}")
    return time.perf_counter() - started


class Receiver:
    name = ""
    called = ""
    port = 0

    def start(self, folder: Path) -> None: ...

    def stop(self) -> None: ...


class NodeReceiver(Receiver):
    name, called = "node", "BREASTNODE"
    receivers = 0  # the configured default

    def start(self, folder: Path) -> None:
        self.port = free_port()
        config = folder / "config.toml"
        config.write_text(
            config_toml(folder / "store", self.port, [Peer("scu", "STORESCU")], min_free_bytes=0)
        )
        env = {"BREASTNODE_NODE__RECEIVERS": str(self.receivers)} if self.receivers else {}
        self.node = NodeProcess(
            config, folder / "store", self.port, folder / "node.log", env=env, log_level="INFO"
        ).start()

    def stop(self) -> None:
        self.node.stop()


class OrthancReceiver(Receiver):
    name, called = "orthanc", "ORTHANC"

    def start(self, folder: Path) -> None:
        self.orthanc = Orthanc(folder / "orthanc").start()  # SyncStorageArea: its default, on
        self.port = self.orthanc.dicom_port

    def stop(self) -> None:
        self.orthanc.stop()


class BareReceiver(Receiver):
    name, called = "bare", "BARESCP"

    def start(self, folder: Path) -> None:
        self.port = free_port()
        script = Path(__file__).with_name("bare_scp.py")
        self.process = subprocess.Popen(
            [sys.executable, str(script), str(self.port), str(folder / "bare"), str(NODE_MAX_PDU)]
        )
        wait_for(lambda: port_open(self.port), timeout=30)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def run_matrix(paths: list[Path], work: Path, repeats: int) -> dict[tuple[str, int], float]:
    """Median wall time per (receiver, parallel); repeats interleave the receivers so that
    drift on the machine (page-cache write-back, other load) spreads over all of them."""
    times: dict[tuple[str, int], list[float]] = {}
    receivers: list[Callable[[], Receiver]] = [NodeReceiver, OrthancReceiver, BareReceiver]
    for repeat in range(repeats):
        for parallel in (1, 4):
            for make in receivers:
                receiver = make()
                folder = work / f"{receiver.name}-{parallel}-{repeat}"
                folder.mkdir(parents=True, exist_ok=True)
                os.sync()  # the previous run's dirty pages must not be flushed during this one
                receiver.start(folder)
                try:
                    elapsed = storescu_wall_time(receiver.port, receiver.called, paths, parallel)
                finally:
                    receiver.stop()
                    shutil.rmtree(folder, ignore_errors=True)
                times.setdefault((receiver.name, parallel), []).append(elapsed)
                print(
                    f"  run {repeat + 1}: {receiver.name:8s} x{parallel}: {elapsed:.2f} s",
                    flush=True,
                )
    return {key: statistics.median(values) for key, values in times.items()}


def peak_rss_receiving(large: Path, work: Path) -> tuple[float, float, float]:
    """Idle and peak RSS (MiB) of the node's whole process tree while one large object
    arrives, and the largest rise of any single process above its own idle RSS."""
    receiver = NodeReceiver()
    folder = work / "rss"
    folder.mkdir(parents=True, exist_ok=True)
    receiver.start(folder)
    try:
        assert receiver.node.process is not None
        root = psutil.Process(receiver.node.process.pid)
        time.sleep(2)
        tree = [root, *root.children(recursive=True)]
        idle = {p.pid: p.memory_info().rss for p in tree}
        peak = dict(idle)
        peak_total = sum(idle.values())
        done = threading.Event()

        def sample() -> None:
            nonlocal peak_total
            while not done.is_set():
                total = 0
                for process in tree:
                    try:
                        rss = process.memory_info().rss
                    except psutil.NoSuchProcess:
                        continue
                    peak[process.pid] = max(peak[process.pid], rss)
                    total += rss
                peak_total = max(peak_total, total)
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        storescu_wall_time(receiver.port, receiver.called, [large], 1)
        time.sleep(0.5)
        done.set()
        sampler.join()
        rise = max(peak[pid] - idle[pid] for pid in idle)
        return sum(idle.values()) / 2**20, peak_total / 2**20, rise / 2**20
    finally:
        receiver.stop()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=40)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bn-bench")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument(
        "--node-receivers", type=int, default=0, help="receiver processes; 0: the node's default"
    )
    args = parser.parse_args()
    NodeReceiver.receivers = args.node_receivers
    args.workdir.mkdir(parents=True, exist_ok=True)

    paths = make_instances(args.workdir / "mg", args.instances)
    total = sum(p.stat().st_size for p in paths) / 2**20
    print(f"{len(paths)} synthetic MG instances, {ROWS}x{COLUMNS} 16-bit, {total:.0f} MiB total")
    print(
        f"cores: {psutil.cpu_count()}; node max PDU {NODE_MAX_PDU}; Orthanc defaults with "
        "SyncStorageArea on; bare pynetdicom writes without fsync or index"
    )
    results = run_matrix(paths, args.workdir / "runs", args.repeats)
    print("\nparallel  node s  orthanc s  bare s  node/orthanc  node/bare  node MiB/s")
    for parallel in (1, 4):
        node, orthanc, bare = (results[(n, parallel)] for n in ("node", "orthanc", "bare"))
        print(
            f"{parallel:8d}  {node:6.2f}  {orthanc:9.2f}  {bare:6.2f}  {node / orthanc:12.2f}"
            f"  {node / bare:9.2f}  {total / node:10.0f}"
        )

    if not args.skip_large:
        large = make_large(args.workdir)
        idle, peak, rise = peak_rss_receiving(large, args.workdir / "runs")
        size = large.stat().st_size / 2**20
        print(
            f"\none {size:.0f} MiB instance: node process tree RSS idle {idle:.0f} MiB, peak "
            f"{peak:.0f} MiB (+{peak - idle:.0f} MiB); largest rise of one process {rise:.0f} MiB"
        )


if __name__ == "__main__":
    main()
