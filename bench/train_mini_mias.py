"""Training and evaluation benchmark on REAL mammograms: mini-MIAS (256 digitised-film MLO
images, 1024 x 1024 at 200 microns, research use only), through the node's own commands:

  breastnode models dataset mini-mias labels.csv --images images --task T --output ...
  breastnode models train MANIFEST --task T --output ...     (split by woman, stratified)
  breastnode models evaluate model.pt split.csv --output ...  (test split, with baselines)

for normal vs abnormal, benign vs malignant and breast density (mini-MIAS's background
tissue F/G/D), with the command's own defaults (the recipe in models/recipe.py) unless an
option below overrides one: from scratch, since nothing is downloaded, there are no
ImageNet weights unless --pretrained names a local file. Printed: the split, the epochs
kept, the test figures with bootstrap 95% CIs, the baselines, and the wall time of each step.
Figures are printed, never asserted.

256 images of digitised film from the 1990s is not a clinical dataset: the figures show
that the tools work on real images, not how well any model would do in a clinic.

The data set stays outside the repository; everything written (manifests, checkpoints,
reports) goes to --output (default: bench/out/mini-mias, ignored by git) and must never
be committed. Skips (exit 0 with a message) when ../shared/data/mini-mias is absent.

    python bench/train_mini_mias.py [--tasks normal_abnormal,benign_malignant,density_fgd]
        [--size ROWSxCOLUMNS] [--epochs N] [--patience N] [--patch-epochs N]
        [--backbone NAME] [--seed 0] [--pretrained FILE] [--device auto] [--output DIR]
        [--no-annotations]

--no-annotations empties the manifest's annotations column before training, so the same
split and budget train on image labels alone (Grad-CAM findings): the comparison with
lesion-supervised training (docs/MODELS.md). The CLI itself has no such option.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "mini-mias"


def run(command: list[str]) -> float:
    started = time.monotonic()
    print("$ breastnode " + " ".join(command), flush=True)
    subprocess.run(
        [str(Path(sys.executable).parent / "breastnode"), "--log-level", "INFO", *command],
        check=True,
        cwd=REPO,
    )
    return time.monotonic() - started


def strip_annotations(manifest: Path) -> int:
    """Empty the manifest's annotations cells in place; how many rows had some."""
    with manifest.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields, records = list(reader.fieldnames or ()), list(reader)
    had = sum(1 for record in records if (record.get("annotations") or "").strip())
    for record in records:
        if "annotations" in record:
            record["annotations"] = ""
    with manifest.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(records)
    return had


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="normal_abnormal,benign_malignant,density_fgd")
    # None: the command's default (the measured CPU recipe)
    for option in ("--size", "--backbone"):
        parser.add_argument(option)
    for option in ("--epochs", "--patience", "--batch-size", "--patch-epochs"):
        parser.add_argument(option, type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pretrained", type=Path)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "out" / "mini-mias")
    parser.add_argument(
        "--no-annotations",
        action="store_true",
        help="train on image labels alone (the manifest's lesion annotations removed)",
    )
    args = parser.parse_args()
    if not (DATA / "labels.csv").is_file():
        print(f"skipped: the mini-MIAS data set is not at {DATA}")
        return 0
    summary = {}
    for task in args.tasks.split(","):
        folder = args.output / task
        manifest = folder / "manifest.csv"
        seconds = {
            "dataset": run(
                [
                    "models",
                    "dataset",
                    "mini-mias",
                    str(DATA / "labels.csv"),
                    "--images",
                    str(DATA / "images"),
                    "--task",
                    task,
                    "--output",
                    str(manifest),
                ]
            )
        }
        if args.no_annotations:
            print(f"annotations removed from {strip_annotations(manifest)} rows", flush=True)
        train = [
            "models",
            "train",
            str(manifest),
            "--task",
            task,
            "--output",
            str(folder / "model"),
            "--name",
            f"mini-mias-{task}",
            "--seed",
            str(args.seed),
            "--device",
            args.device,
            "--no-progress",
        ]
        for option in ("size", "backbone", "epochs", "patience", "batch_size", "patch_epochs"):
            if getattr(args, option) is not None:
                train += ["--" + option.replace("_", "-"), str(getattr(args, option))]
        if args.pretrained:
            train += ["--pretrained", str(args.pretrained)]
        seconds["train"] = run(train)
        seconds["evaluate"] = run(
            [
                "models",
                "evaluate",
                str(folder / "model" / "model.pt"),
                str(folder / "model" / "split.csv"),
                "--output",
                str(folder / "report"),
                "--format",
                "md",
                "--device",
                args.device,
                "--no-progress",
            ]
        )
        figures = json.loads((folder / "report" / "figures.json").read_text(encoding="utf-8"))
        summary[task] = {"seconds": {k: round(v, 1) for k, v in seconds.items()}, **figures}
        print(f"{task}: report {folder / 'report' / 'report.md'}; seconds {seconds}", flush=True)
    (args.output / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(f"summary: {args.output / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
