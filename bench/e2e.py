"""End-to-end benchmark, the way a hospital runs the node: Orthanc (Debian package, free
ports) is the PACS, the node is one of its modalities and Orthanc is the node's result
destination. SYNTHETIC four-view studies (``breastnode sample-study``, 3328x2560 14-bit by
default) are uploaded to Orthanc over REST first (not timed).

Latency: one study at a time, from the POST of Orthanc's ``/modalities/breastnode/store``
to the moment Orthanc holds the study's last result object (the TID 1500 SR, the
Mammography CAD SR and four SC overlays: 4 + 6 instances), polled every 50 ms. Throughput:
as many other studies pushed in one job, until every result is in Orthanc, in studies per
minute.

The node runs with the demo model (trained here first unless --demo-weights names one) on
--device. Figures are printed, never asserted.

    python bench/e2e.py [--studies 20] [--size 3328x2560] [--device auto|cpu|cuda]
                        [--demo-weights PATH] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.demo import make_demo_checkpoint
from node.sample_study import write_sample_study
from tests.helpers import NodeProcess, Peer, config_toml, free_port, wait_for
from tests.orthanc import Orthanc

RESULTS_PER_STUDY = 6  # TID 1500 SR, Mammography CAD SR, four SC overlays


def node_config(weights: Path, device: str) -> str:
    return f"""
[pipeline]
analysis = "models"
quiet_seconds = 30
sweep_interval_seconds = 0.2
poll_seconds = 0.05
[models]
mammography = "{weights}"
device = "{device}"
[routing]
result_destinations = ["orthanc"]
"""


def instance_count(orthanc: Orthanc, study_id: str) -> int:
    return len(orthanc.request("GET", f"/studies/{study_id}/instances"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=20)
    parser.add_argument("--size", default="3328x2560")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--demo-weights", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows, columns = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="breastnode-e2e-") as temporary:
        work = Path(temporary)
        weights = (args.demo_weights or work / "demo.pt").resolve()
        if not weights.is_file():
            print("training the demo model ...", flush=True)
            make_demo_checkpoint(weights)
        node_port = free_port()
        orthanc = Orthanc(work / "orthanc", {"breastnode": ("BREASTNODE", "127.0.0.1", node_port)})
        orthanc.start()
        store = work / "store"
        config = work / "config.toml"
        peers = [Peer("orthanc", "ORTHANC", "127.0.0.1", orthanc.dicom_port)]
        config.write_text(
            config_toml(store, node_port, peers, extra=node_config(weights, args.device))
        )
        node = NodeProcess(config, store, node_port, work / "node.log", log_level="WARNING").start()
        try:
            study_ids = []
            for n in range(2 * args.studies):  # the first half one by one, then the rest at once
                paths = write_sample_study(work / f"in-{n}", "LR"[n % 2], (rows, columns), seed=n)
                study_ids.append({orthanc.upload(p)["ParentStudy"] for p in paths}.pop())
            print(f"{2 * args.studies} studies of 4 views {rows}x{columns} uploaded", flush=True)
            latencies = []
            for study_id in study_ids[: args.studies]:
                started = time.monotonic()
                orthanc.store_to("breastnode", [study_id])
                wait_for(
                    lambda s=study_id: instance_count(orthanc, s) >= 4 + RESULTS_PER_STUDY,
                    timeout=600,
                    interval=0.05,
                )
                latencies.append(time.monotonic() - started)
                print(f"  study {len(latencies)}: {latencies[-1]:.2f} s", flush=True)
            batch = study_ids[args.studies :]
            started = time.monotonic()
            orthanc.store_to("breastnode", batch)
            pushed = time.monotonic() - started
            for study_id in batch:
                wait_for(
                    lambda s=study_id: instance_count(orthanc, s) >= 4 + RESULTS_PER_STUDY,
                    timeout=1800,
                    interval=0.2,
                )
            all_at_once = time.monotonic() - started
        finally:
            node.stop()
            orthanc.stop()
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    total = sum(latencies)
    figures = {
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs",
        "device": args.device,
        "studies": args.studies,
        "size": [rows, columns],
        "p50_seconds": round(statistics.median(latencies), 2),
        "p95_seconds": round(p95, 2),
        "max_seconds": round(ordered[-1], 2),
        "studies_per_minute_one_at_a_time": round(60 * len(latencies) / total, 2),
        "push_of_all_seconds": round(pushed, 2),
        "studies_per_minute_all_at_once": round(60 * args.studies / all_at_once, 2),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for key, value in figures.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
