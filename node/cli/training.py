"""``breastnode models dataset | train | evaluate``: build a labelled manifest, train a
checkpoint on it, and evaluate a checkpoint. torch is imported only when these run."""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.serving import TASKS
from models.training import recipe
from node.cli.common import Command, parse_size, require_store
from node.config import Settings
from node.errors import NodeError

if TYPE_CHECKING:
    from models.training import Row

logger = logging.getLogger(__name__)

DATASET_FORMATS = ("mini-mias", "cbis-ddsm", "cmmd", "vindr-mammo", "node")
TASK_NAMES = tuple(TASKS)  # every task a checkpoint can answer, density included


def add_training_commands(actions: Any) -> None:
    """Register ``dataset``, ``train`` and ``evaluate`` under ``breastnode models``."""
    dataset = actions.add_parser(
        "dataset", help="write a training manifest from a public dataset's labels or the store"
    )
    dataset.add_argument("format", choices=DATASET_FORMATS)
    dataset.add_argument(
        "labels",
        type=Path,
        help="the dataset's label file; for 'node': a CSV of study_instance_uid, label "
        "and optionally laterality",
    )
    dataset.add_argument("--images", type=Path, help="the dataset's image folder")
    dataset.add_argument("--task", required=True, choices=TASK_NAMES)
    dataset.add_argument("--output", type=Path, required=True, help="manifest CSV to write")
    dataset.set_defaults(run=_clear_errors(_dataset))

    train = actions.add_parser("train", help="train a checkpoint on a labelled manifest")
    train.add_argument("manifest", type=Path)
    train.add_argument("--task", required=True, choices=TASK_NAMES)
    train.add_argument("--output", type=Path, required=True, help="folder for the checkpoint")
    train.add_argument("--name", default="site-model", help="model name in the manifest")
    train.add_argument("--version", default="0.1.0", help="model version in the manifest")
    # the defaults are the recipe measured best for a CPU-only site (models.training.recipe)
    train.add_argument("--backbone", default=recipe.BACKBONE)
    train.add_argument(
        "--size",
        default="x".join(map(str, recipe.WORKING_SIZE)),
        help="working size ROWSxCOLUMNS",
    )
    train.add_argument("--pretrained", type=Path, help="local pretrained backbone weights")
    train.add_argument("--frozen-epochs", type=int, default=recipe.FROZEN_EPOCHS)
    train.add_argument("--epochs", type=int, default=recipe.EPOCHS)
    train.add_argument("--patience", type=int, default=recipe.PATIENCE)
    train.add_argument("--batch-size", type=int, default=recipe.BATCH_SIZE)
    train.add_argument("--learning-rate", type=float, default=recipe.LEARNING_RATE)
    train.add_argument(
        "--patch-epochs",
        type=int,
        default=recipe.PATCH_EPOCHS,
        help="epochs of the lesion-vs-tissue patch stage when the manifest has annotations "
        "(0: none)",
    )
    train.add_argument(
        "--patch-size", type=int, default=recipe.PATCH_SIZE, help="patch side, model pixels"
    )
    train.add_argument("--balance", choices=("loss", "sampler", "none"), default="loss")
    train.add_argument("--no-augment", action="store_true")
    train.add_argument(
        "--fractions", default="0.7,0.15,0.15", help="train,validation,test by patient"
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="auto")
    train.add_argument("--workers", type=int, default=0, help="data loader processes")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")
    train.add_argument(
        "--operating-point",
        default="youden",
        help="how the threshold is chosen on the validation split (calibrated scores): "
        "youden (default), sensitivity=0.90, specificity=0.90 or recall-rate=0.10",
    )
    train.set_defaults(run=_clear_errors(_train))

    evaluate = actions.add_parser("evaluate", help="evaluate a checkpoint on a manifest")
    evaluate.add_argument("weights", type=Path)
    evaluate.add_argument("manifest", type=Path, help="a manifest (the split.csv of train)")
    evaluate.add_argument("--output", type=Path, required=True, help="report folder")
    evaluate.add_argument(
        "--split",
        default="test",
        help="rows of this split; 'all' for a manifest none of whose images were trained on",
    )
    evaluate.add_argument(
        "--no-baselines", action="store_true", help="skip the feature-classifier baselines"
    )
    evaluate.add_argument("--smote", action="store_true", help="SMOTE for the baselines")
    evaluate.add_argument("--specificity", type=float, default=0.9)
    evaluate.add_argument("--bootstrap", type=int, default=1000, help="bootstrap rounds")
    evaluate.add_argument("--format", choices=("html", "md"), default="html")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--no-progress", action="store_true")
    evaluate.set_defaults(run=_clear_errors(_evaluate))


def _clear_errors(command: Command) -> Command:
    """Bad manifests, images, checkpoints and settings end as one clear line (NodeError),
    not a traceback."""

    def run(settings: Settings, args: argparse.Namespace) -> int:
        from models.serving import CheckpointError
        from models.training import DatasetError

        try:
            return command(settings, args)
        except (DatasetError, CheckpointError, ValueError) as exc:
            raise NodeError(str(exc)) from exc

    return run


def _dataset(settings: Settings, args: argparse.Namespace) -> int:
    from models.training import describe, write_manifest

    if args.format == "node":
        from node.cli.manifest_from_store import stored_rows

        require_store(settings)
        converted = stored_rows(settings, args.labels, args.task, args.output.parent)
    else:
        from models.training import READERS

        if args.images is None:
            raise NodeError(f"{args.format}: --images names the dataset's image folder")
        converted = READERS[args.format](args.labels, args.images, args.task)
    count = write_manifest(args.output, converted.rows)
    print(f"wrote {args.output}: {describe(converted.rows) if count else 'no rows'}")
    for reason, skipped in sorted(converted.skipped.items()):
        print(f"  left out {skipped}: {reason}")
    return 0 if count else 1


def _train(settings: Settings, args: argparse.Namespace) -> int:
    from models.serving import parse_operating_point
    from models.training import (
        TrainingSettings,
        describe,
        label_index,
        place_rows,
        read_manifest,
        save_checkpoint,
        train,
        write_epoch_log,
        write_manifest,
    )

    rule = parse_operating_point(args.operating_point)  # before any image is read
    rows = read_manifest(args.manifest, args.task)
    try:
        fractions = tuple(float(v) for v in args.fractions.split(","))
        training = TrainingSettings(
            task=args.task,
            backbone=args.backbone,
            working_size=parse_size(args.size),
            pretrained=args.pretrained,
            frozen_epochs=args.frozen_epochs,
            epochs=args.epochs,
            patience=args.patience,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            balance=args.balance,
            augment=not args.no_augment,
            seed=args.seed,
            device=args.device,
            workers=args.workers,
            operating_point=rule,
            patch_epochs=args.patch_epochs,
            patch_size=args.patch_size,
        )
    except ValueError as exc:
        raise NodeError(str(exc)) from exc
    if len(fractions) != 3:
        raise NodeError("--fractions takes three numbers: train,validation,test")
    split_rows = assign_splits(
        rows, args.task, (fractions[0], fractions[1], fractions[2]), args.seed
    )
    output: Path = args.output
    output.mkdir(parents=True, exist_ok=True)
    write_manifest(output / "split.csv", split_rows)
    parts = {name: [r for r in split_rows if r.split == name] for name in ("train", "validation")}
    for name, part in parts.items():
        print(f"{name}: {describe(part)}")
    progress = not args.no_progress
    started = time.monotonic()
    try:
        placed = {
            name: place_rows(
                part,
                label_index(args.task, part),
                training.working_size,
                output / "cache" / f"{name}.npy",
                progress,
                f"{name} images",
            )
            for name, part in parts.items()
        }
        trained = train(training, placed["train"], placed["validation"], progress=progress)
    finally:  # the placed images: large, and copies of patient images
        shutil.rmtree(output / "cache", ignore_errors=True)
    weights = output / "model.pt"
    write_epoch_log(output / "training-log.jsonl", trained.history)
    manifest = save_checkpoint(
        trained,
        training,
        weights,
        args.name,
        args.version,
        training_data=f"{args.manifest.name}: training split {describe(parts['train'])}; "
        f"validation split {describe(parts['validation'])}",
        extra={
            "split_seed": args.seed,
            "training_seconds": round(time.monotonic() - started, 1),
        },
    )
    best = trained.history[trained.best_epoch - 1]
    print(
        f"wrote {weights}: epoch {best.epoch} of {len(trained.history)} kept "
        f"(validation AUC {best.validation_auc:.3f}), operating threshold "
        f"{manifest.operating_threshold:.3f}, {time.monotonic() - started:.0f} s on "
        f"{trained.device}; NOT VALIDATED FOR CLINICAL USE"
    )
    if manifest.calibration is not None and manifest.operating_point is not None:
        point = manifest.operating_point
        print(
            f"scores calibrated by {manifest.calibration.method} ({manifest.calibration.reason}); "
            f"operating point {rule.describe()}: validation sensitivity "
            f"{point.sensitivity:.3f}, specificity {point.specificity:.3f}, recall rate "
            f"{point.recall_rate:.3f}"
        )
    print(f"evaluate: breastnode models evaluate {weights} {output / 'split.csv'} --output REPORT")
    if args.task == "density_fgd":  # a dataset's own classes: no BI-RADS composition
        print("the node reports BI-RADS composition from task density (a-d) only")
        return 0
    key = {"mri_benign_malignant": "mri", "density": "density"}.get(args.task, "mammography")
    print(f'use in the node: [models] {key} = "{weights}"')
    return 0


def assign_splits(
    rows: Sequence[Row], task: str, fractions: tuple[float, float, float], seed: int
) -> list[Row]:
    """Rows with their split. Splits set in the manifest are kept (one per patient; her
    unsplit rows follow it); the other patients are split by patient (stratified) into
    train/validation/test, or into train/validation when the manifest fixes test rows (the
    fractions renormalised)."""
    from models.training import label_index, split_by_patient, with_splits

    fixed: dict[str, str] = {}
    for row in rows:
        if row.split is not None and fixed.setdefault(row.patient_id, row.split) != row.split:
            raise NodeError("a patient is in two splits of the manifest; one split per patient")
    free = [n for n, r in enumerate(rows) if r.patient_id not in fixed]
    if "test" in fixed.values():
        keep = fractions[0] + fractions[1]
        fractions = (fractions[0] / keep, fractions[1] / keep, 0.0)
    assigned = [fixed.get(r.patient_id, "") for r in rows]
    if free:
        labels = label_index(task, rows)
        split = split_by_patient(
            [rows[n].patient_id for n in free], [labels[n] for n in free], fractions, seed
        )
        parts = (split.train, split.validation, split.test)
        for name, members in zip(("train", "validation", "test"), parts, strict=True):
            for m in members:
                assigned[free[m]] = name
    return with_splits(rows, assigned)


def _evaluate(settings: Settings, args: argparse.Namespace) -> int:
    from models.serving import read_verified
    from models.training import caveat, evaluate, read_manifest, write_report

    task = read_verified(args.weights).task
    rows = read_manifest(args.manifest, task)
    test = list(rows) if args.split == "all" else [r for r in rows if r.split == args.split]
    if not test:
        raise NodeError(
            f"no rows of split {args.split!r}; give the split.csv that train wrote, or "
            "--split all for a manifest held out from training"
        )
    train = [] if args.no_baselines else [r for r in rows if r.split == "train"]
    if not args.no_baselines and not train:
        print("no 'train' rows in the manifest: the baselines are left out", file=sys.stderr)
    started = time.monotonic()
    try:
        evaluation = evaluate(
            args.weights,
            test,
            train,
            device=args.device,
            target_specificity=args.specificity,
            rounds=args.bootstrap,
            smote=args.smote,
            seed=args.seed,
            cache=args.output / "cache",
            progress=not args.no_progress,
        )
    finally:
        shutil.rmtree(args.output / "cache", ignore_errors=True)
    report = write_report(evaluation, args.output, args.format)
    binary = evaluation.binary
    print(
        f"{binary.cases} images, {binary.positives} positive: ROC AUC "
        f"{binary.roc_auc.value:.3f} ({binary.roc_auc.low:.3f}-{binary.roc_auc.high:.3f}), "
        f"sensitivity {binary.recall.value:.3f}, specificity {binary.specificity.value:.3f} "
        f"at threshold {binary.threshold:.3f} ({time.monotonic() - started:.0f} s)"
    )
    point = evaluation.manifest.operating_point
    if point is not None:
        target = f"={point.target:.2f}" if point.target is not None else ""
        print(f"operating point {point.rule}{target} (chosen on the validation split)")
    for baseline in evaluation.baselines:
        print(f"  baseline {baseline.name}: ROC AUC {baseline.binary.roc_auc.value:.3f}")
    if caveat(evaluation):
        print(caveat(evaluation))
    print(f"report: {report}")
    return 0
