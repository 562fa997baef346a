"""``breastnode analyse STUDY_UID``: run the node's models on one stored study by hand and
print the result; nothing is sent. torch is imported only when it runs."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.cli.common import open_database
from node.cli.models import NOT_CLINICAL
from node.config import Settings
from node.errors import ConfigError, NodeError

if TYPE_CHECKING:
    from models.serving import StudyResult


def add_commands(commands: Any) -> None:
    analyse = commands.add_parser(
        "analyse", help="analyse one stored study now and print the result (nothing is sent)"
    )
    analyse.add_argument("study_uid", metavar="STUDY_UID")
    analyse.add_argument("--json", action="store_true", help="machine-readable output")
    analyse.add_argument(
        "--save", type=Path, metavar="FOLDER", help="also write the result objects there"
    )
    analyse.set_defaults(run=_analyse)


def _analyse(settings: Settings, args: argparse.Namespace) -> int:
    from node.pipeline.analysis import StudyInput
    from node.pipeline.model_analysis import ModelAnalysis
    from storage.filestore import FileStore
    from storage.study_files import stored_instances

    if settings.pipeline.analysis not in {"", "models"}:
        raise ConfigError("`analyse` runs the node's own models ([pipeline] analysis = 'models')")
    with open_database(settings) as (_engine, index):
        instances = stored_instances(index, FileStore(settings.storage_root), args.study_uid)
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
