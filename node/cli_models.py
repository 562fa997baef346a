"""``breastnode models ...`` and ``breastnode analyse``: checkpoints and running one study by
hand. torch is imported only when one of these commands runs."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.cli_site_audit import add_audit_command
from node.cli_training import add_training_commands, parse_size
from node.config import Settings
from node.errors import ConfigError, NodeError

if TYPE_CHECKING:
    from models.result import StudyResult

NOT_CLINICAL = "DEMO / NOT VALIDATED - NOT FOR CLINICAL USE"
# BI-RADS breast composition (models.result.COMPOSITIONS, not imported: numpy at start-up);
# the sample's default is one the demo mammography model reads as well as a plain phantom
COMPOSITIONS = ("a", "b", "c", "d")
SAMPLE_COMPOSITION = "b"


def add_model_commands(commands: Any) -> None:
    """Register the commands on the ``breastnode`` subparsers."""
    models = commands.add_parser("models", help="model checkpoints")
    actions = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    demo = actions.add_parser(
        "init-demo",
        help="train the demo mammography, MRI and density checkpoints on synthetic phantoms "
        "(CPU, about a minute each, the density one under half a minute)",
    )
    demo.add_argument(
        "--output", type=Path, help="mammography weights file (default: the demo one)"
    )
    demo.add_argument("--mri-output", type=Path, help="MRI weights file (default: the demo one)")
    demo.add_argument(
        "--density-output", type=Path, help="density weights file (default: the demo one)"
    )
    demo.add_argument(
        "--only", choices=("mammography", "mri", "density"), help="train only this one"
    )
    demo.add_argument("--if-missing", action="store_true", help="skip those that exist")
    demo.add_argument("--views", type=int, default=None, help="training views")
    demo.add_argument("--epochs", type=int, default=None, help="training epochs")
    demo.add_argument("--seed", type=int, default=None, help="random seed")
    demo.set_defaults(run=_init_demo)
    show = actions.add_parser("show", help="verify checkpoints and print their manifests")
    show.add_argument("weights", type=Path, nargs="*", help="default: the configured ones")
    show.set_defaults(run=_show)
    add_training_commands(actions)
    add_audit_command(actions)

    sample = commands.add_parser(
        "sample-study",
        help="write a SYNTHETIC four-view mammography (or DCE breast MRI) study to try the node",
    )
    sample.add_argument("folder", type=Path, metavar="DIR")
    sample.add_argument(
        "--lesion", choices=("L", "R", "none"), default="L", help="breast with a lesion"
    )
    sample.add_argument(
        "--mri", action="store_true", help="a DCE breast MRI study (pre, post 1, post 2)"
    )
    sample.add_argument(
        "--size", help="ROWSxCOLUMNS of each view or slice (default 1024x832; MRI 256x256)"
    )
    sample.add_argument("--slices", type=int, default=32, help="MRI slices per series")
    sample.add_argument(
        "--density",
        choices=COMPOSITIONS,
        default=SAMPLE_COMPOSITION,
        help=f"BI-RADS breast composition of the mammography (default {SAMPLE_COMPOSITION})",
    )
    sample.add_argument("--seed", type=int, default=0)
    sample.set_defaults(run=_sample_study)

    analyse = commands.add_parser(
        "analyse", help="analyse one stored study now and print the result (nothing is sent)"
    )
    analyse.add_argument("study_uid", metavar="STUDY_UID")
    analyse.add_argument("--json", action="store_true", help="machine-readable output")
    analyse.add_argument(
        "--save", type=Path, metavar="FOLDER", help="also write the result objects there"
    )
    analyse.set_defaults(run=_analyse)


def _init_demo(settings: Settings, args: argparse.Namespace) -> int:
    from dataclasses import replace

    from models.synthetic.demo import DEMO_VERSION, DemoTraining, demo_checkpoint_current
    from models.synthetic.demo_density import DEMO_DENSITY_TRAINING, DEMO_DENSITY_VERSION
    from models.synthetic.demo_models import (
        make_demo_checkpoint,
        make_demo_density_checkpoint,
        make_demo_mri_checkpoint,
    )
    from models.synthetic.demo_mri import DEMO_MRI_TRAINING

    wanted = [
        (
            "mammography",
            args.output or settings.demo_checkpoint,
            DemoTraining(),
            "phantom views",
            make_demo_checkpoint,
            DEMO_VERSION,
        ),
        (
            "mri",
            args.mri_output or settings.demo_mri_checkpoint,
            DEMO_MRI_TRAINING,
            "DCE phantoms",
            make_demo_mri_checkpoint,
            DEMO_VERSION,
        ),
        (
            "density",
            args.density_output or settings.demo_density_checkpoint,
            DEMO_DENSITY_TRAINING,
            "phantom views of known composition",
            make_demo_density_checkpoint,
            DEMO_DENSITY_VERSION,
        ),
    ]
    chosen = {k: getattr(args, k) for k in ("views", "epochs", "seed") if getattr(args, k)}
    for kind, weights, defaults, what, make, version in wanted:
        if args.only not in (None, kind):
            continue
        if args.if_missing and weights.is_file():
            if demo_checkpoint_current(weights, version):
                print(f"demo {kind} checkpoint present: {weights}")
                continue
            # an older demo learnt other phantoms (or the file is not its manifest): kept,
            # it would mark the walkthrough's sample study wrongly
            print(f"demo {kind} checkpoint {weights} is not this version's demo; training again")
        training = replace(defaults, **chosen)
        print(f"training the demo {kind} model on {training.views} synthetic {what} ...")
        started = time.monotonic()
        manifest = make(weights, training)
        print(
            f"wrote {weights} ({manifest.name} {manifest.version}, {manifest.backbone}, "
            f"{time.monotonic() - started:.0f} s); {NOT_CLINICAL}"
        )
    return 0


def _sample_study(settings: Settings, args: argparse.Namespace) -> int:
    from models.synthetic import MARK, write_sample_mri_study, write_sample_study

    rows, columns = parse_size(args.size or ("256x256" if args.mri else "1024x832"))
    side = None if args.lesion == "none" else args.lesion
    if min(rows, columns) < 64:
        raise NodeError("--size: at least 64 pixels each way")
    if args.mri:
        if not 8 <= args.slices <= 512:
            raise NodeError("--slices: 8 to 512")
        paths = write_sample_mri_study(args.folder, side, (rows, columns), args.slices, args.seed)
        made, lesion = f"3 DCE series of {args.slices} slices", "an enhancing lesion"
    else:
        paths = write_sample_study(args.folder, side, (rows, columns), args.seed, args.density)
        made, lesion = f"{len(paths)} views of breast composition {args.density}", "a lesion"
    for path in paths:
        print(path)
    print(f"{made}, {'no lesion' if side is None else f'{lesion} in the {side} breast'}; {MARK}")
    return 0


def _show(settings: Settings, args: argparse.Namespace) -> int:
    from models.checkpoint import CheckpointError, read_verified

    paths = list(args.weights) or [
        p
        for p in (
            settings.mammography_checkpoint,
            settings.mri_checkpoint,
            settings.density_checkpoint,
        )
        if p is not None
    ]
    failed = False
    for path in paths:
        try:
            manifest = read_verified(path)
        except CheckpointError as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            failed = True
            continue
        print(f"{path}: hash verified")
        print(manifest.to_json())
        if not manifest.validated_for_clinical_use:
            print(NOT_CLINICAL)
    return 1 if failed else 0


def _analyse(settings: Settings, args: argparse.Namespace) -> int:
    from node.pipeline.analysis import StudyInput
    from node.pipeline.model_analysis import ModelAnalysis
    from node.pipeline.worker import stored_instances
    from node.service import open_index
    from storage.filestore import FileStore

    if settings.pipeline.analysis not in {"", "models"}:
        raise ConfigError("`analyse` runs the node's own models ([pipeline] analysis = 'models')")
    engine, index = open_index(settings)
    try:
        instances = stored_instances(index, FileStore(settings.storage_root), args.study_uid)
    finally:
        engine.dispose()
    if not instances:
        raise NodeError(f"no stored instances for study {args.study_uid}")
    study = StudyInput(args.study_uid, 1, instances, ())
    analysis = ModelAnalysis(settings)
    started = time.monotonic()
    analysed = analysis.result(study)
    elapsed = time.monotonic() - started
    if analysed is None:
        print("no configured model applies to this study", file=sys.stderr)
        return 1
    if args.json:
        json.dump(_as_dict(analysed.result, elapsed), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print(analysed.result, elapsed)
    if args.save:
        objects = analysis.objects(study, analysed)
        args.save.mkdir(parents=True, exist_ok=True)
        for number, ds in enumerate(objects, start=1):
            ds.save_as(
                args.save / f"result-{number:02d}-{ds.Modality}.dcm", enforce_file_format=True
            )
        print(f"{len(objects)} result object(s) written to {args.save}", file=sys.stderr)
    return 0


def _as_dict(result: StudyResult, seconds: float) -> dict[str, Any]:
    return {
        "study_instance_uid": result.study_instance_uid,
        "model": {
            "name": result.model.name,
            "version": result.model.version,
            "validated_for_clinical_use": result.model.validated_for_clinical_use,
            "operating_threshold": result.model.operating_threshold,
        },
        "study_score": result.overall_score,
        "breasts": [
            {
                "laterality": b.laterality,
                "score": b.score,
                "category": str(b.category),
                "composition": b.composition,
            }
            for b in result.breasts
        ],
        "images": [
            {
                "sop_instance_uid": image.sop_instance_uid,
                "laterality": image.laterality,
                "view": image.view,
                "frame": image.frame,
                "findings": [
                    {
                        "kind": f.kind,
                        "score": f.score,
                        "center": [round(f.region.center.column, 1), round(f.region.center.row, 1)],
                        "frame": f.frame,
                    }
                    for f in image.findings
                ],
            }
            for image in result.images
        ],
        "seconds": round(seconds, 3),
    }


def _print(result: StudyResult, seconds: float) -> None:
    model = result.model
    print(f"model {model.name} {model.version}, operating threshold {model.operating_threshold}")
    if not model.validated_for_clinical_use:
        print(NOT_CLINICAL)
    print(f"study score {result.overall_score:.3f} ({seconds:.2f} s)")
    for breast in result.breasts:
        composition = f", breast composition {breast.composition}" if breast.composition else ""
        print(f"  breast {breast.laterality}: {breast.score:.3f} {breast.category}{composition}")
    for image in result.images:
        where = " ".join(x for x in (image.laterality, image.view) if x) or "image"
        frame = f" frame {image.frame}" if image.frame else ""
        print(f"  {where}{frame}: {len(image.findings)} finding(s)")
        for f in image.findings:
            c = f.region.center
            print(f"    {f.kind} {f.score:.3f} at column {c.column:.0f}, row {c.row:.0f}")
