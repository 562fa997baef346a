"""``breastnode sample-study``: a SYNTHETIC study to try the node with."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from models.serving.result import COMPOSITIONS
from node.cli.common import parse_size
from node.config import Settings
from node.errors import NodeError

# the sample's default is one the demo mammography model reads as well as a plain phantom
SAMPLE_COMPOSITION = "b"


def add_commands(commands: Any) -> None:
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
