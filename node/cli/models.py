"""``breastnode models init-demo | show`` (and, from their own modules, ``dataset``, ``train``,
``evaluate`` and ``audit``): the node's checkpoints. torch is imported only when one of these
commands runs."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from node.cli.common import store_missing
from node.cli.site_audit import add_audit_command
from node.cli.training import add_training_commands
from node.config import Settings
from node.errors import NodeError

NOT_CLINICAL = "DEMO / NOT VALIDATED - NOT FOR CLINICAL USE"
KINDS = ("mammography", "mri", "density")


def add_commands(commands: Any) -> None:
    models = commands.add_parser("models", help="model checkpoints")
    actions = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    demo = actions.add_parser(
        "init-demo",
        help="train the demo mammography, MRI and density checkpoints that the configuration "
        "uses on synthetic phantoms (CPU, about a minute each, the density one under half a "
        "minute)",
    )
    demo.add_argument(
        "--output", type=Path, help="mammography weights file (default: the demo one)"
    )
    demo.add_argument("--mri-output", type=Path, help="MRI weights file (default: the demo one)")
    demo.add_argument(
        "--density-output", type=Path, help="density weights file (default: the demo one)"
    )
    demo.add_argument(
        "--only",
        choices=KINDS,
        help="train only this one, even when the configuration does not use it",
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


def demo_models_unused(settings: Settings) -> dict[str, str]:
    """The demo checkpoints the configuration does not use, each with the reason: a site
    checkpoint, "none", or no model analysis at all. ``init-demo`` makes only the others
    (unless ``--only`` names one), so ``make run`` trains nothing a site does not run."""
    analysis = settings.pipeline.analysis
    if analysis != "models":
        why = f"the plug-in {analysis}" if analysis else "off"
        return {kind: f"[pipeline] analysis is {why}, not the node's models" for kind in KINDS}
    configured = {
        "mammography": (settings.mammography_checkpoint, settings.demo_checkpoint),
        "mri": (settings.mri_checkpoint, settings.demo_mri_checkpoint),
        "density": (settings.density_checkpoint, settings.demo_density_checkpoint),
    }
    unused: dict[str, str] = {}
    for kind, (checkpoint, demo) in configured.items():
        if checkpoint is None:
            unused[kind] = f'[models] {kind} = "none"'
        elif checkpoint != demo:
            unused[kind] = f"[models] {kind} is the site checkpoint {checkpoint}"
    return unused


def _init_demo(settings: Settings, args: argparse.Namespace) -> int:
    from dataclasses import replace

    from models.synthetic.demo import DEMO_VERSION, DemoTraining, demo_checkpoint_current
    from models.synthetic.demo_density import DEMO_DENSITY_TRAINING, DEMO_DENSITY_VERSION
    from models.synthetic.demo_models import (
        demo_cached,
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
    chosen = {
        k: getattr(args, k) for k in ("views", "epochs", "seed") if getattr(args, k) is not None
    }
    unused = demo_models_unused(settings)
    for kind, weights, defaults, what, make, version in wanted:
        if args.only not in (None, kind):
            continue
        if args.only is None and kind in unused:
            print(f"demo {kind} checkpoint not needed: {unused[kind]}")
            continue
        if args.if_missing and weights.is_file():
            if demo_checkpoint_current(weights, version):
                print(f"demo {kind} checkpoint present: {weights}")
                continue
            # an older demo learnt other phantoms (or the file is not its manifest): kept,
            # it would mark the walkthrough's sample study wrongly
            print(f"demo {kind} checkpoint {weights} is not this version's demo; training again")
        training = replace(defaults, **chosen)
        if demo_cached(kind, training):
            print(f"installing the demo {kind} model from the demo model cache ...")
        else:
            print(f"training the demo {kind} model on {training.views} synthetic {what} ...")
        started = time.monotonic()
        manifest = make(weights, training)
        print(
            f"wrote {weights} ({manifest.name} {manifest.version}, {manifest.backbone}, "
            f"{time.monotonic() - started:.0f} s); {NOT_CLINICAL}"
        )
    return 0


def _show(settings: Settings, args: argparse.Namespace) -> int:
    from models.serving import CheckpointError, read_verified

    paths = list(args.weights) or [
        p
        for p in (
            settings.mammography_checkpoint,
            settings.mri_checkpoint,
            settings.density_checkpoint,
        )
        if p is not None
    ]
    demos = set(settings.demo_checkpoints) & set(paths)
    if demos and not args.weights and not settings.storage_root.is_dir():
        remedy = "make the demo checkpoints (breastnode models init-demo)"
        raise NodeError(store_missing(settings, "the demo checkpoints' folder", remedy))
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
