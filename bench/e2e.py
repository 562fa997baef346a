"""End-to-end benchmark, the way a hospital runs the node: Orthanc (Debian package, free
ports) is the PACS, the node is one of its modalities and Orthanc is the node's result
destination. SYNTHETIC four-view studies (``breastnode sample-study``, 3328x2560 14-bit by
default) are uploaded to Orthanc over REST first (not timed).

Latency: one study at a time, from the POST of Orthanc's ``/modalities/breastnode/store``
(``"Synchronous": true``, so it returns once the node has answered every C-STORE) to the
moment Orthanc holds the study's last result object (the TID 1500 SR, the Mammography CAD
SR and four SC overlays: 4 + 6 instances), polled every 50 ms. Throughput: as many other
studies pushed in one job, until every result is in Orthanc, in studies per minute.

Where the latency goes, per study, measured (the stages add up to the total):

- push: the POST until it returns: the C-STORE of the four views into the node, each one
  stored durably (fsync, index commit) before the node answers.
- completion: the push returned until the analysis job was created (the completion sweep).
- analysis: job created until job done, the node's complete->analysed histogram: queue
  wait, decoding, the model, building the result objects (SR, CAD SR, four SC overlays) and
  storing them. The node's metrics do not separate the model from the result building.
- delivery: job done until Orthanc stored the last result (six C-STOREs, one at a time).
- seen: Orthanc stored the last result until the REST polling saw it.

The node's figures come from its Prometheus /metrics: the _sum and _count of its latency
histograms are read before each push and after the study's results are in, so each study
gets its own deltas. The histograms give durations, not moments; the moments are placed on
the benchmark's clock from the results' arrivals in Orthanc. Orthanc answers a C-STORE once
the object is stored and indexed, and the node records a delivery after that answer, so a
result's delivery is the moment it became visible, estimated as the midpoint between the
poll that first saw it and the poll before (within 25 ms). The analysis ended at the mean of
those moments less the mean analysed->delivered, and was queued complete->analysed earlier.
The node's receive->complete (first view stored to job created) overlaps the push, so it is
printed as reported but is not a stage; per study (--json), ``first_view_stored`` is where it
places the first view after the POST, a check of the placement: it lies within the push, give
or take the polling error.

The node runs with the demo model (from the demo model cache unless --demo-weights names
one) on --device. Figures are printed, never asserted.

    python bench/e2e.py [--studies 20] [--size 3328x2560] [--device auto|cpu|cuda]
                        [--demo-weights PATH] [--json]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.network import free_port, port_open, wait_for
from harness.node_process import NodeProcess, Peer, config_toml
from harness.orthanc import Orthanc
from models.synthetic.demo_models import demo_checkpoint
from models.synthetic.samples import write_sample_study

VIEWS = 4
RESULTS_PER_STUDY = 6  # TID 1500 SR, Mammography CAD SR, four SC overlays
POLL_S = 0.05

# The node's latency histograms (node/pipeline/metrics.py) and how many observations one
# study adds to each: one analysis job, one delivery per result object.
NODE_HISTOGRAMS = {
    "receive_to_complete": ("breastnode_receive_to_complete_seconds", 1),
    "complete_to_analysed": ("breastnode_complete_to_analysed_seconds", 1),
    "analysed_to_delivered": ("breastnode_analysed_to_delivered_seconds", RESULTS_PER_STUDY),
}

STAGES = {
    "push": "POST store until it returns: 4 views C-STOREd, stored durably",
    "completion": "push returned until the analysis job was created",
    "analysis": "job created until done: queue, model, result objects (node)",
    "delivery": "job done until the last result was stored in Orthanc",
    "seen": "last result stored until seen by REST polling (50 ms)",
}

NODE_FIGURES = {
    "receive_to_complete": "first view stored -> job created (overlaps the push)",
    "complete_to_analysed": "job created -> job done (the analysis stage)",
    "analysed_to_delivered": "job done -> result delivered, mean of the 6 results",
}


def node_config(weights: Path, device: str) -> str:
    return f"""
[pipeline]
analysis = "models"
quiet_seconds = 30
sweep_interval_seconds = 0.2
poll_seconds = 0.05
[models]
mammography = "{weights}"
mri = "none"
density = "none"
device = "{device}"
[routing]
result_destinations = ["orthanc"]
"""


def instance_count(orthanc: Orthanc, study_id: str) -> int:
    return len(orthanc.request("GET", f"/studies/{study_id}/instances"))


def results_in(orthanc: Orthanc, study_id: str) -> bool:
    return instance_count(orthanc, study_id) >= VIEWS + RESULTS_PER_STUDY


def scrape(port: int) -> dict[str, float]:
    """The node's unlabelled samples (counters, histogram sums and counts) by name."""
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=60) as response:
        text = response.read().decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


def node_means(
    port: int, before: Mapping[str, float], studies: int, timeout: float = 60
) -> dict[str, float]:
    """Mean of each node histogram over what ``studies`` studies added since ``before``,
    once they all are recorded (the last delivery is recorded just after Orthanc has it)."""

    def added() -> dict[str, tuple[float, float]] | None:
        after = scrape(port)
        deltas = {}
        for key, (name, per_study) in NODE_HISTOGRAMS.items():
            count = after[f"{name}_count"] - before[f"{name}_count"]
            if count < per_study * studies:
                return None
            if count > per_study * studies:
                raise SystemExit(f"{name}: {count:.0f} new observations, not {per_study}")
            deltas[key] = (after[f"{name}_sum"] - before[f"{name}_sum"], count)
        return deltas

    deltas: dict[str, tuple[float, float]] = wait_for(added, timeout=timeout, interval=POLL_S)
    return {key: total / count for key, (total, count) in deltas.items()}


@dataclass(frozen=True)
class Arrivals:
    stored: list[float]  # when each result object became visible in Orthanc (estimated)
    seen: float  # when the poll that saw the last one returned


def watch_results(orthanc: Orthanc, study_id: str, since: float, timeout: float) -> Arrivals:
    """Poll the study every 50 ms until its results are in; a result first seen by one poll
    arrived between that poll and the one before: placed at the midpoint."""
    stored: list[float] = []
    previous = since
    while True:
        asked = time.monotonic()
        results = instance_count(orthanc, study_id) - VIEWS
        answered = time.monotonic()
        polled = (asked + answered) / 2
        while len(stored) < min(results, RESULTS_PER_STUDY):
            stored.append((previous + polled) / 2)
        if len(stored) == RESULTS_PER_STUDY:
            return Arrivals(stored, answered)
        if answered - since > timeout:
            raise SystemExit(f"study {study_id}: {len(stored)} result(s) after {timeout} s")
        previous = polled
        time.sleep(POLL_S)


def study_stages(
    started: float, returned: float, arrivals: Arrivals, node: Mapping[str, float]
) -> dict[str, float]:
    """One study's stages on the benchmark's clock (they add up to ``total``), then the
    node's figures as reported."""
    analysed = statistics.fmean(arrivals.stored) - node["analysed_to_delivered"]
    queued = analysed - node["complete_to_analysed"]
    return {
        "push": returned - started,
        "completion": queued - returned,
        "analysis": node["complete_to_analysed"],
        "delivery": arrivals.stored[-1] - analysed,
        "seen": arrivals.seen - arrivals.stored[-1],
        "total": arrivals.seen - started,
        "first_view_stored": queued - node["receive_to_complete"] - started,
    } | {f"node_{key}": value for key, value in node.items()}


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summary(
    per_study: Sequence[Mapping[str, float]], key: str, total_p50: float
) -> dict[str, float]:
    values = [s[key] for s in per_study]
    p50 = statistics.median(values)
    return {
        "p50_seconds": round(p50, 3),
        "p95_seconds": round(percentile(values, 0.95), 3),
        "share_of_total_p50": round(p50 / total_p50, 3),
    }


def print_table(figures: Mapping[str, object]) -> None:
    stages = figures["stages"]
    node = figures["node_metrics"]
    assert isinstance(stages, dict) and isinstance(node, dict)
    print(f"\n{'stage':<24}{'p50 s':>8}{'p95 s':>8}{'share':>8}  what")
    rows = [(k, stages[k], d) for k, d in STAGES.items()]
    rows.append(("total", stages["total"], "POST store until the last result was seen"))
    for key, figure, what in rows:
        print(
            f"{key:<24}{figure['p50_seconds']:>8.3f}{figure['p95_seconds']:>8.3f}"
            f"{figure['share_of_total_p50']:>8.0%}  {what}"
        )
    print("node metrics as reported (not additive):")
    for key, what in NODE_FIGURES.items():
        figure = node[key]
        print(
            f"{key:<24}{figure['p50_seconds']:>8.3f}{figure['p95_seconds']:>8.3f}"
            f"{figure['share_of_total_p50']:>8.0%}  {what}"
        )
    print()


def inside_analysis(
    work: Path, weights: Path, device: str, size: tuple[int, int]
) -> dict[str, float]:
    """The analysis stage split by the node's own code, run here after the node has stopped
    (mean seconds over three sample studies): read the sources, run the model (preprocessing,
    network, heatmaps back on the source grid), build the result objects, write and fsync
    them. The node's metrics see these only as one stage."""
    from pydicom import dcmread

    from models.serving.inference import Predictor
    from models.serving.sources import study_sources
    from models.serving.study import analyse_images
    from node.config import ResultsSettings
    from node.results.build import build_result_objects

    engine = Predictor(weights, device=device)
    spent = {"sources": 0.0, "model": 0.0, "objects": 0.0, "write": 0.0}
    runs = 3
    for n in range(runs + 1):  # the first is a warm-up
        paths = write_sample_study(work / f"split-{n}", "LR"[n % 2], size, seed=1000 + n)
        moments = [time.perf_counter()]
        sources = study_sources(paths)
        moments.append(time.perf_counter())
        result = analyse_images(engine, str(dcmread(paths[0]).StudyInstanceUID), sources.images)
        moments.append(time.perf_counter())
        objects = build_result_objects(sources.datasets, result, ResultsSettings(), "BREASTNODE", 1)
        moments.append(time.perf_counter())
        for number, ds in enumerate(objects):
            target = work / f"split-{n}-{number}.dcm"
            ds.save_as(target, enforce_file_format=True)
            with target.open("rb") as written:
                os.fsync(written.fileno())
        moments.append(time.perf_counter())
        if n:
            for key, start, end in zip(spent, moments, moments[1:], strict=False):
                spent[key] += (end - start) / runs
    return spent


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=20)
    parser.add_argument("--size", default="3328x2560")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--demo-weights", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows, columns = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="breastnode-e2e-") as temporary:
        work = Path(temporary)
        # the demo model cache trains it first if this code version has none
        weights = (args.demo_weights or demo_checkpoint("mammography")).resolve()
        node_port, metrics_port = free_port(), free_port()
        orthanc = Orthanc(work / "orthanc", {"breastnode": ("BREASTNODE", "127.0.0.1", node_port)})
        orthanc.start()
        store = work / "store"
        config = work / "config.toml"
        peers = [Peer("orthanc", "ORTHANC", "127.0.0.1", orthanc.dicom_port)]
        config.write_text(
            config_toml(
                store,
                node_port,
                peers,
                extra=node_config(weights, args.device),
                metrics_port=metrics_port,
            )
        )
        node = NodeProcess(config, store, node_port, work / "node.log", log_level="WARNING").start()
        try:
            wait_for(lambda: port_open(metrics_port), timeout=30)
            study_ids = []
            for n in range(2 * args.studies):  # the first half one by one, then the rest at once
                paths = write_sample_study(work / f"in-{n}", "LR"[n % 2], (rows, columns), seed=n)
                study_ids.append({orthanc.upload(p)["ParentStudy"] for p in paths}.pop())
            print(f"{2 * args.studies} studies of 4 views {rows}x{columns} uploaded", flush=True)
            per_study = []
            for study_id in study_ids[: args.studies]:
                before = scrape(metrics_port)
                started = time.monotonic()
                orthanc.store_to("breastnode", [study_id])
                returned = time.monotonic()
                arrivals = watch_results(orthanc, study_id, returned, timeout=600)
                stages = study_stages(
                    started, returned, arrivals, node_means(metrics_port, before, 1)
                )
                per_study.append(stages)
                print(
                    f"  study {len(per_study)}: {stages['total']:.2f} s ("
                    + ", ".join(f"{k} {stages[k]:.2f}" for k in STAGES)
                    + ")",
                    flush=True,
                )
            batch = study_ids[args.studies :]
            before = scrape(metrics_port)
            started = time.monotonic()
            orthanc.store_to("breastnode", batch)
            pushed = time.monotonic() - started
            for study_id in batch:
                wait_for(
                    functools.partial(results_in, orthanc, study_id), timeout=1800, interval=0.2
                )
            all_at_once = time.monotonic() - started
            batch_node = node_means(metrics_port, before, len(batch))
        finally:
            node.stop()
            orthanc.stop()
        split = inside_analysis(work, weights, args.device, (rows, columns))
    latencies = [s["total"] for s in per_study]
    total_p50 = statistics.median(latencies)
    figures: dict[str, object] = {
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs",
        "device": args.device,
        "studies": args.studies,
        "size": [rows, columns],
        "p50_seconds": round(total_p50, 2),
        "p95_seconds": round(percentile(latencies, 0.95), 2),
        "max_seconds": round(max(latencies), 2),
        "studies_per_minute_one_at_a_time": round(60 * len(latencies) / sum(latencies), 2),
        "push_of_all_seconds": round(pushed, 2),
        "studies_per_minute_all_at_once": round(60 * args.studies / all_at_once, 2),
        "stages": {k: summary(per_study, k, total_p50) for k in [*STAGES, "total"]},
        "node_metrics": {k: summary(per_study, f"node_{k}", total_p50) for k in NODE_FIGURES},
        "node_metrics_all_at_once_mean_seconds": {k: round(v, 3) for k, v in batch_node.items()},
        "inside_analysis_mean_seconds": {k: round(v, 3) for k, v in split.items()},
        "per_study": [{k: round(v, 3) for k, v in s.items()} for s in per_study],
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print_table(figures)
        print("inside the analysis stage (the node's code in this process, mean of 3 studies):")
        for key, value in split.items():
            print(f"  {key:<10}{value:>8.3f} s")
        for key, value in figures.items():
            if key not in {"stages", "node_metrics", "per_study", "inside_analysis_mean_seconds"}:
                print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
