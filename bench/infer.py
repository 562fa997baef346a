"""Inference benchmark: where a mammography study's analysis time goes, per stage and in all.

For each model -- the demo checkpoint (ResNet18 with a saliency head at 128x96) and a
randomly initialised ResNet50 with Grad-CAM at the full-field working size
(``models.serving.checkpoint.FULL_FIELD_WORKING_SIZE``, 1024x832) -- synthetic 4-view MG
studies (phantoms upscaled to --size, 14 bits stored in 16, written as DICOM files to a
temporary folder) go through the node's own entry points: ``models.serving.sources.study_sources``
then ``models.serving.study.analyse_images``, one study per call as the node runs them. Stage timers
are wrappers around the functions those call (patched in for the run; on CUDA each timer
synchronises the device first and last):

  decode      study_sources less display: dcmread of the header, then of the whole file,
              and pydicom's pixel_array
  display     models.serving.preprocess.display_values (Modality/VOI LUT, percentile scaling)
  preprocess  models.serving.preprocess.plan (host): flip and breast crop (Otsu), scale, padding
  transfer    Predictor.prepare_on_device: the crop to the device (pinned memory on CUDA), then
              resized, padded and standardised there
  forward     Predictor.predict_images less transfer: network and heatmap (saliency or Grad-CAM),
              results back on the host
  post        models.serving.study.image_result: heatmap back to the source grid, findings
  other       the rest (breast and study scores, bookkeeping)

Then the same studies are analysed --batch-studies at a time in shared forward passes
(``models.serving.study.analyse_studies``, what the worker does with ``[models] studies_per_batch``)
to show what batching across studies buys.

Printed: ms per view per stage and the dominant stage; per-study latency (median over the
studies); studies per second one study at a time and batched. Figures are printed, never
asserted. The files are read just after being written, so decode reads from the page cache,
not the disk. Predictor.prepare_on_device and Predictor.predict_images are timed through a
subclass (the product code is not changed).

    python bench/infer.py [--device auto|cpu|cuda] [--models demo,resnet50] [--studies 8]
                          [--cpu-resnet50-studies 1] [--batch-studies 4] [--size 3328x2560]
                          [--working-size 1024x832] [--demo-weights PATH] [--threads N] [--json]

On a shared CPU, torch's default threads (one per core) stall whenever another process
holds a core; --threads 1 gives steadier (not faster) figures there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from unittest import mock

import numpy as np
import pydicom
import torch
import torchvision
from PIL import Image
from pydicom.uid import generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import models.serving.inference
import models.serving.sources
import models.serving.study
from models.serving.checkpoint import (
    FULL_FIELD_WORKING_SIZE,
    TASKS,
    CheckpointError,
    Manifest,
    file_sha256,
    write_manifest,
)
from models.serving.inference import Predictor
from models.serving.networks import BreastClassifier
from models.serving.preprocess import Geometry
from models.synthetic import SyntheticPatient, mammogram, write
from models.synthetic.demo_models import demo_checkpoint
from models.synthetic.phantoms import phantom_study, to_stored_values

# The product defines no working size for full-field checkpoints (a manifest's input_size is
# whatever the checkpoint was trained at); this is a common choice for mammography CNNs.
DEFAULT_WORKING_SIZE = FULL_FIELD_WORKING_SIZE
DEFAULT_SIZE = (3328, 2560)  # rows, columns of a full-field digital mammogram (as ingest.py)
NODE_BATCH_SIZE = 8  # the node's default [models] batch_size
STAGES = ("decode", "display", "preprocess", "transfer", "forward", "post", "other")
MODELS = ("demo", "resnet50")
VIEWS_PER_STUDY = 4

P = ParamSpec("P")
R = TypeVar("R")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Clock:
    """Exclusive time per stage: a stage opened inside another is taken out of the outer."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self._open: list[str] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        synchronize(self.device)
        started = time.perf_counter()
        self._open.append(name)
        try:
            yield
        finally:
            synchronize(self.device)
            elapsed = time.perf_counter() - started
            self._open.pop()
            self.seconds[name] += elapsed
            if self._open:
                self.seconds[self._open[-1]] -= elapsed

    def timed(self, name: str, function: Callable[P, R]) -> Callable[P, R]:
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with self.stage(name):
                return function(*args, **kwargs)

        return wrapper


class TimedPredictor(Predictor):
    """The product's engine, with its device preparation and its predict call timed."""

    clock: Clock | None = None

    def prepare_on_device(
        self, images: Sequence[np.ndarray], geometries: Sequence[Geometry]
    ) -> torch.Tensor:
        if self.clock is None:
            return super().prepare_on_device(images, geometries)
        with self.clock.stage("transfer"):
            return super().prepare_on_device(images, geometries)

    def predict_images(
        self, images: Sequence[np.ndarray], geometries: Sequence[Geometry]
    ) -> list[models.serving.inference.ViewPrediction]:
        if self.clock is None:
            return super().predict_images(images, geometries)
        with self.clock.stage("forward"):
            return super().predict_images(images, geometries)


@contextmanager
def instrumented(engine: TimedPredictor, clock: Clock) -> Iterator[None]:
    """Stage timers around what study_sources and analyse_images call."""
    engine.clock = clock
    with ExitStack() as stack:
        for module, name, stage in (
            (models.serving.sources, "display_values", "display"),
            (models.serving.study, "plan", "preprocess"),
            (models.serving.study, "image_result", "post"),
        ):
            stack.enter_context(
                mock.patch.object(module, name, clock.timed(stage, getattr(module, name)))
            )
        try:
            yield
        finally:
            engine.clock = None


@dataclass(frozen=True)
class StudyFiles:
    study_uid: str
    paths: tuple[Path, ...]


def parse_size(text: str) -> tuple[int, int]:
    rows, _, columns = text.lower().partition("x")
    try:
        size = (int(rows), int(columns))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not ROWSxCOLUMNS") from None
    if min(size) < 64:
        raise argparse.ArgumentTypeError(f"{text!r}: each side must be at least 64")
    return size


def upscale(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    resized = Image.fromarray(image.astype(np.float32), mode="F").resize(
        (shape[1], shape[0]), Image.Resampling.BILINEAR
    )
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def synthetic_studies(folder: Path, count: int, size: tuple[int, int]) -> list[StudyFiles]:
    """``count`` 4-view MG studies at ``size``: phantoms made at a quarter of it (quick)
    and upscaled, fine noise added at full size, lesions in the left, right or no breast."""
    rng = np.random.default_rng(20261121)
    base = (max(64, size[0] // 4), max(48, size[1] // 4))
    patient = SyntheticPatient()
    studies = []
    for number in range(count):
        study_uid = generate_uid()
        paths = []
        for index, view in enumerate(phantom_study(rng, ("L", "R", None)[number % 3], base)):
            image = upscale(view.image, size)
            image += rng.normal(0, 0.01, size=size).astype(np.float32)
            ds = mammogram(
                patient,
                study_uid=study_uid,
                laterality=view.laterality,
                view=view.view,
                rows=8,
                columns=8,
            )
            ds.Rows, ds.Columns = size
            ds.PixelData = to_stored_values(np.clip(image, 0, 1), bits=14).tobytes()
            spacing = round(view.pixel_spacing_mm * base[1] / size[1], 4)
            ds.PixelSpacing = [spacing, spacing]
            ds.ImagerPixelSpacing = [spacing, spacing]
            ds.InstanceNumber = index + 1
            paths.append(write(ds, folder / f"study-{number:03d}", f"view-{index + 1}.dcm"))
        studies.append(StudyFiles(study_uid, tuple(paths)))
    return studies


def resnet50_checkpoint(folder: Path, working_size: tuple[int, int]) -> Path:
    """A randomly initialised ResNet50 lesion classifier with Grad-CAM (nothing downloaded)."""
    torch.manual_seed(0)
    network = BreastClassifier("resnet50", classes=2)
    weights = folder / "resnet50-bench.pt"
    torch.save(network.state_dict(), weights)
    manifest = Manifest(
        name="bench-resnet50-untrained",
        version="0.0.0",
        task="lesion",
        labels=TASKS["lesion"],
        backbone="resnet50",
        input_size=working_size,
        operating_threshold=0.5,
        sha256=file_sha256(weights),
        validated_for_clinical_use=False,
        training_data="untrained, benchmark only",
        heatmap="gradcam",
    )
    write_manifest(weights, manifest)
    return weights


@dataclass
class Run:
    """Timings of analysing some studies ``studies_per_call`` at a time."""

    studies_per_call: int
    engine_batch: int
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    call_seconds: list[float] = field(default_factory=list)
    views: int = 0
    findings: int = 0
    scores: list[float] = field(default_factory=list)

    @property
    def studies(self) -> int:
        return len(self.call_seconds) * self.studies_per_call

    @property
    def wall(self) -> float:
        return sum(self.call_seconds)

    def ms_per_view(self) -> dict[str, float]:
        return {k: 1000 * v / max(self.views, 1) for k, v in self.seconds.items()}

    def add(self, clock: Clock, elapsed: float, views: int) -> None:
        clock.seconds["other"] = elapsed - sum(v for k, v in clock.seconds.items() if k != "other")
        for stage, seconds in clock.seconds.items():
            self.seconds[stage] += seconds
        self.call_seconds.append(elapsed)
        self.views += views


def one_at_a_time(engine: TimedPredictor, studies: Sequence[StudyFiles]) -> Run:
    """Each study through study_sources and analyse_images, as the node analyses a job."""
    run = Run(1, engine.batch_size)
    for study in studies:
        clock = Clock(engine.device)
        with instrumented(engine, clock):
            synchronize(engine.device)
            started = time.perf_counter()
            with clock.stage("decode"):
                sources = models.serving.sources.study_sources(list(study.paths))
            result = models.serving.study.analyse_images(engine, study.study_uid, sources.images)
            synchronize(engine.device)
            elapsed = time.perf_counter() - started
        run.add(clock, elapsed, len(sources.images))
        run.findings += sum(len(image.findings) for image in result.images)
        run.scores.append(result.overall_score)
    return run


def batched(engine: TimedPredictor, studies: Sequence[StudyFiles], per_call: int) -> Run:
    """``per_call`` studies' views in one predict call (one forward pass), then each study's
    results as analyse_images makes them."""
    saved = engine.batch_size
    engine.batch_size = per_call * VIEWS_PER_STUDY
    run = Run(per_call, engine.batch_size)
    try:
        for start in range(0, len(studies) - per_call + 1, per_call):
            chunk = studies[start : start + per_call]
            clock = Clock(engine.device)
            with instrumented(engine, clock):
                synchronize(engine.device)
                started = time.perf_counter()
                batch: list[tuple[str, Sequence[models.serving.study.AnalysisImage]]] = []
                for number, study in enumerate(chunk):
                    with clock.stage("decode"):
                        sources = models.serving.sources.study_sources(list(study.paths))
                    batch.append((f"study-{start + number}", sources.images))
                images = [image for _, views in batch for image in views]
                for result in models.serving.study.analyse_studies(engine, batch):
                    run.scores.append(result.overall_score)
                    run.findings += sum(len(i.findings) for i in result.images)
                synchronize(engine.device)
                elapsed = time.perf_counter() - started
            run.add(clock, elapsed, len(images))
    finally:
        engine.batch_size = saved
    return run


def warm_up(engine: TimedPredictor, batch_sizes: Sequence[int]) -> float:
    """First-call costs out of the timings: on CUDA the context, kernels and pinned memory
    at every batch size used; on the CPU one no-grad forward of one view (a full Grad-CAM
    warm-up would cost as much as a timed view)."""
    started = time.perf_counter()
    zeros = np.zeros(engine.working_size, dtype=np.float32)
    if engine.device.type == "cuda":
        for size in sorted(set(batch_sizes)):
            engine.predict([zeros] * size)
        synchronize(engine.device)
    else:
        with torch.no_grad():
            engine.network(torch.from_numpy(zeros)[None, None])
    return time.perf_counter() - started


def peak_memory(device: torch.device) -> str:
    if device.type == "cuda":
        return (
            f"peak GPU memory allocated {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    return f"process peak RSS so far {peak:.2f} GiB"


def describe(engine: Predictor) -> str:
    manifest = engine.manifest
    rows, columns = manifest.input_size
    return f"{manifest.backbone}, {manifest.heatmap} heatmap, working size {rows}x{columns}"


def stage_table(runs: Sequence[Run]) -> str:
    header = "stage        " + "".join(
        f"  {r.studies_per_call} study/call ms/view    "
        if r.studies_per_call == 1
        else f"  {r.studies_per_call} studies/call ms/view  "
        for r in runs
    )
    lines = [header]
    per_view = [r.ms_per_view() for r in runs]
    totals = [sum(p.values()) for p in per_view]
    for stage in STAGES:
        cells = "".join(
            f"  {p[stage]:10.1f} {100 * p[stage] / max(t, 1e-9):5.1f}%        "
            for p, t in zip(per_view, totals, strict=True)
        )
        lines.append(f"{stage:12s}{cells}")
    lines.append("total       " + "".join(f"  {t:10.1f}               " for t in totals))
    return "\n".join(line.rstrip() for line in lines)


def dominant(run: Run) -> tuple[str, float]:
    per_view = run.ms_per_view()
    stage = max(per_view, key=lambda s: per_view[s])
    return stage, per_view[stage] / max(sum(per_view.values()), 1e-9)


def report(
    name: str, engine: Predictor, runs: Sequence[Run], memory: str, warm: float
) -> dict[str, Any]:
    single = runs[0]
    print(f"\n== {name}: {describe(engine)}, on {engine.device} ==")
    print(
        f"{single.studies} studies of {VIEWS_PER_STUDY} views one at a time (engine batch "
        f"{single.engine_batch} views)"
        + "".join(
            f"; {r.studies} studies {r.studies_per_call} per call ({r.engine_batch} views per "
            "forward pass)"
            for r in runs[1:]
        )
        + f"; warm-up {warm:.1f} s"
    )
    print(stage_table(runs))
    stage, share = dominant(single)
    print(f"dominant stage, one study per call: {stage} ({100 * share:.0f}% of the time)")
    for run in runs[1:]:
        stage_b, share_b = dominant(run)
        print(
            f"dominant stage, {run.studies_per_call} studies per call: {stage_b} "
            f"({100 * share_b:.0f}%)"
        )
    for run in runs:
        per_view = run.ms_per_view()
        model = per_view["transfer"] + per_view["forward"]
        print(
            f"{run.studies_per_call} per call: host-side stages (decode, display, preprocess, "
            f"post, other) {sum(per_view.values()) - model:.1f} ms/view; model (transfer, "
            f"forward) {model:.1f} ms/view"
        )
    latencies = single.call_seconds
    print(
        f"per-study latency ({VIEWS_PER_STUDY} views): median {statistics.median(latencies):.3f} s"
        f" (min {min(latencies):.3f}, max {max(latencies):.3f}, n={len(latencies)})"
    )
    print(f"throughput one study per call: {single.studies / single.wall:.3f} studies/s")
    for run in runs[1:]:
        speedup = (run.studies / run.wall) / (single.studies / single.wall)
        print(
            f"throughput {run.studies_per_call} studies per call: "
            f"{run.studies / run.wall:.3f} studies/s ({speedup:.2f}x);"
            f" a call takes median {statistics.median(run.call_seconds):.3f} s"
        )
    findings = single.findings / max(single.views, 1)
    print(
        f"findings per view {findings:.2f}; study scores {min(single.scores):.3f}.."
        f"{max(single.scores):.3f}; {memory}"
    )
    return {
        "model": name,
        "backbone": engine.manifest.backbone,
        "heatmap": engine.manifest.heatmap,
        "working_size": list(engine.manifest.input_size),
        "device": str(engine.device),
        "warm_up_s": round(warm, 3),
        "memory": memory,
        "runs": [
            {
                "studies_per_call": r.studies_per_call,
                "engine_batch_views": r.engine_batch,
                "studies": r.studies,
                "views": r.views,
                "ms_per_view": {k: round(v, 2) for k, v in r.ms_per_view().items()},
                "dominant_stage": dominant(r)[0],
                "call_seconds": [round(s, 4) for s in r.call_seconds],
                "median_call_s": round(statistics.median(r.call_seconds), 4),
                "studies_per_s": round(r.studies / r.wall, 4),
                "findings_per_view": round(r.findings / max(r.views, 1), 3),
            }
            for r in runs
        ],
    }


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda")
    parser.add_argument("--models", default="demo,resnet50", help="comma list of demo, resnet50")
    parser.add_argument("--studies", type=int, default=8, help="studies per model")
    parser.add_argument(
        "--cpu-resnet50-studies",
        type=int,
        default=1,
        help="studies for resnet50 on the CPU (Grad-CAM costs seconds a view there); 1 "
        "leaves out its batched run",
    )
    parser.add_argument(
        "--batch-studies", type=int, default=4, help="studies per call in the batched run; 0: none"
    )
    parser.add_argument(
        "--size", type=parse_size, default=DEFAULT_SIZE, help="source image ROWSxCOLS (3328x2560)"
    )
    parser.add_argument(
        "--working-size",
        type=parse_size,
        default=DEFAULT_WORKING_SIZE,
        help="resnet50 working size ROWSxCOLS (1024x832)",
    )
    parser.add_argument("--demo-weights", type=Path, help="an existing demo checkpoint (.pt)")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads; 0 leaves torch's default (the node sets none)",
    )
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args()
    chosen = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(chosen) - set(MODELS))
    if unknown or not chosen:
        parser.error(f"--models: unknown {unknown}; choose from {', '.join(MODELS)}")
    if args.studies < 1 or args.cpu_resnet50_studies < 1:
        parser.error("--studies and --cpu-resnet50-studies must be at least 1")
    try:
        device = models.serving.inference.pick_device(args.device)
    except (CheckpointError, RuntimeError) as exc:
        parser.error(f"--device {args.device}: {exc}")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"device {device} ({device_name(device)}); torch {torch.__version__}, torchvision "
        f"{torchvision.__version__}, pydicom {pydicom.__version__}, numpy {np.__version__}; "
        f"torch threads {torch.get_num_threads()}, cores available {cores}; load average "
        f"{load_average()}"
    )
    with tempfile.TemporaryDirectory(prefix="bn-infer-") as temporary:
        work = Path(temporary)
        counts = {
            name: (
                min(args.studies, args.cpu_resnet50_studies)
                if name == "resnet50" and device.type == "cpu"
                else args.studies
            )
            for name in chosen
        }
        checkpoints: dict[str, Path] = {}
        if "demo" in chosen:
            if args.demo_weights is not None:
                checkpoints["demo"] = args.demo_weights
                print(f"demo checkpoint: {args.demo_weights}")
            else:
                print(
                    "the demo checkpoint from the demo model cache (trained there first if "
                    "this code version has none: about a minute on 2 cores) ...",
                    flush=True,
                )
                training = time.perf_counter()
                weights = demo_checkpoint("mammography")
                print(f"  ready in {time.perf_counter() - training:.0f} s: {weights}")
                checkpoints["demo"] = weights
        if "resnet50" in chosen:
            checkpoints["resnet50"] = resnet50_checkpoint(work, args.working_size)
            print(
                "resnet50 checkpoint: random weights (untrained), Grad-CAM, working size "
                f"{args.working_size[0]}x{args.working_size[1]}"
            )

        making = time.perf_counter()
        studies = synthetic_studies(work / "studies", max(counts.values()), args.size)
        size_mib = sum(p.stat().st_size for s in studies for p in s.paths) / 2**20
        print(
            f"{len(studies)} synthetic studies x {VIEWS_PER_STUDY} views, {args.size[0]}x"
            f"{args.size[1]} 16-bit, {size_mib:.0f} MiB, written in "
            f"{time.perf_counter() - making:.1f} s"
        )

        results = []
        for name in chosen:
            engine = TimedPredictor(
                checkpoints[name], device=args.device, batch_size=NODE_BATCH_SIZE
            )
            count = counts[name]
            per_call = args.batch_studies if 1 < args.batch_studies <= count else 0
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            shapes = [VIEWS_PER_STUDY] + ([per_call * VIEWS_PER_STUDY] if per_call else [])
            warm = warm_up(engine, shapes)
            print(f"\n{name}: {count} studies ...", flush=True)
            runs = [one_at_a_time(engine, studies[:count])]
            if per_call:
                runs.append(batched(engine, studies[:count], per_call))
            elif args.batch_studies > 1:
                print(
                    f"  batched run left out: {count} studies, fewer than --batch-studies "
                    f"{args.batch_studies}"
                )
            results.append(report(name, engine, runs, peak_memory(device), warm))
            del engine

    print(
        f"\ntotal run time {time.perf_counter() - started:.0f} s; load average {load_average()} "
        "(other processes on the machine make CPU timings noisy)"
    )
    if args.json:
        document = {
            "device": str(device),
            "device_name": device_name(device),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "load_average_end": load_average(),
            "source_size": list(args.size),
            "models": results,
        }
        print(json.dumps(document, sort_keys=True))


if __name__ == "__main__":
    main()
