"""The ``breastnode`` command: serve, check-config, echo, studies, instances, jobs,
deliveries, resend, audit; models and analyse live in :mod:`node.cli_models`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node import __version__
from node.cli_models import add_model_commands
from node.config import Settings, load_settings
from node.errors import NodeError
from node.logsetup import configure

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from storage.index import InstanceIndex

logger = logging.getLogger(__name__)

EXIT_CONFIG = 2
EXIT_FAILURE = 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except NodeError as exc:
        print(f"breastnode: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure(args.log_level or settings.logging.level)
    command: Callable[[Settings, argparse.Namespace], int] = args.run
    try:
        return command(settings, args)
    except NodeError as exc:
        print(f"breastnode: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:  # output piped into head and the like
        sys.stdout = Path(os.devnull).open("w")  # noqa: SIM115 - nothing more is written
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="breastnode", description="DICOM AI node for breast imaging."
    )
    parser.add_argument("--version", action="version", version=f"breastnode {__version__}")
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="configuration file (default: ./config.toml)",
    )
    parser.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="overrides [logging] level",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the node until stopped")
    serve.set_defaults(run=_serve)

    check = commands.add_parser("check-config", help="validate the configuration and show it")
    check.set_defaults(run=_check_config)

    echo = commands.add_parser("echo", help="C-ECHO a configured peer")
    echo.add_argument("peer", metavar="PEER_NAME")
    echo.set_defaults(run=_echo)

    studies = commands.add_parser("studies", help="list received studies")
    studies.add_argument("--json", action="store_true", help="machine-readable output")
    studies.set_defaults(run=_studies)

    instances = commands.add_parser("instances", help="list the stored instances of a study")
    instances.add_argument("study_uid", metavar="STUDY_UID")
    instances.add_argument("--json", action="store_true", help="machine-readable output")
    instances.set_defaults(run=_instances)
    jobs = commands.add_parser("jobs", help="list analysis jobs")
    jobs.add_argument("--json", action="store_true", help="machine-readable output")
    jobs.set_defaults(run=_jobs)

    deliveries = commands.add_parser("deliveries", help="list result deliveries (the outbox)")
    deliveries.add_argument("--json", action="store_true", help="machine-readable output")
    deliveries.set_defaults(run=_deliveries)

    resend = commands.add_parser(
        "resend", help="queue dead-lettered deliveries (or the chosen ones) again"
    )
    resend.add_argument(
        "ids",
        metavar="ID",
        type=int,
        nargs="*",
        help="delivery ids (default: every dead-lettered delivery)",
    )
    resend.set_defaults(run=_resend)

    audit = commands.add_parser("audit", help="the audit trail")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = audit_commands.add_parser("verify", help="check the hash chain of every record")
    verify.set_defaults(run=_audit_verify)
    export = audit_commands.add_parser("export", help="print the records as XML")
    export.add_argument("--after", type=int, default=0, help="only records after this number")
    export.set_defaults(run=_audit_export)
    add_model_commands(commands)
    _accept_global_options(parser)
    return parser


def _accept_global_options(parser: argparse.ArgumentParser) -> None:
    """Let ``--config`` and ``--log-level`` come after the (sub)command too, as many tools
    accept (``breastnode serve --config FILE``). Their defaults there are SUPPRESS, so an
    option not repeated after the command keeps the value given before it."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for command in action.choices.values():
            command.add_argument(
                "--config", type=Path, default=argparse.SUPPRESS, help="configuration file"
            )
            command.add_argument(
                "--log-level",
                choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                default=argparse.SUPPRESS,
                help="overrides [logging] level",
            )
            _accept_global_options(command)


def _audit_verify(settings: Settings, _args: argparse.Namespace) -> int:
    from storage.audit import AuditTrail

    with _database(settings) as (engine, _index):
        check = AuditTrail(engine).verify()
    if check.intact:
        print(f"audit trail intact: {check.records} record(s), hash chain verified")
        return 0
    print(f"audit trail BROKEN: {len(check.problems)} problem(s) in {check.records} record(s)")
    for problem in check.problems:
        print(f"  {problem}")
    return EXIT_FAILURE


def _audit_export(settings: Settings, args: argparse.Namespace) -> int:
    from xml.sax.saxutils import quoteattr

    from storage.audit import AuditTrail

    with _database(settings) as (engine, _index):
        records = AuditTrail(engine).records(after_id=args.after)
    print('<?xml version="1.0" encoding="UTF-8"?>')
    print("<AuditRecords>")
    for record in records:
        print(
            f'<AuditRecord Sequence="{record.id}" Hash={quoteattr(record.hash)} '
            f"PreviousHash={quoteattr(record.prev_hash)}>{record.message}</AuditRecord>"
        )
    print("</AuditRecords>")
    return 0


def _jobs(settings: Settings, args: argparse.Namespace) -> int:
    from storage.queue import JobQueue

    with _database(settings) as (engine, _index):
        rows = [
            {
                "id": j.id,
                "study_instance_uid": j.study_instance_uid,
                "version": j.version,
                "kind": j.kind,
                "state": j.state.value,
                "attempts": j.attempts,
                "next_run_at": j.next_run_at.isoformat(),
                "worker": j.worker_id,
                "last_error": j.last_error,
                "finished_at": j.finished_at.isoformat() if j.finished_at else None,
            }
            for j in JobQueue(engine).jobs()
        ]
    _emit(
        rows,
        args.json,
        [
            "id",
            "study_instance_uid",
            "version",
            "kind",
            "state",
            "attempts",
            "next_run_at",
            "last_error",
        ],
    )
    return 0


def _deliveries(settings: Settings, args: argparse.Namespace) -> int:
    from storage.outbox import Outbox

    with _database(settings) as (engine, _index):
        rows = [
            {
                "id": d.id,
                "study_instance_uid": d.study_instance_uid,
                "version": d.version,
                "sop_instance_uid": d.sop_instance_uid,
                "destination": d.destination,
                "state": d.state.value,
                "attempts": d.attempts,
                "next_attempt_at": d.next_attempt_at.isoformat(),
                "last_status": None if d.last_status is None else f"0x{d.last_status:04X}",
                "last_error": d.last_error,
                "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
            }
            for d in Outbox(engine).deliveries()
        ]
    _emit(
        rows,
        args.json,
        [
            "id",
            "sop_instance_uid",
            "destination",
            "state",
            "attempts",
            "next_attempt_at",
            "last_status",
            "last_error",
        ],
    )
    return 0


def _resend(settings: Settings, args: argparse.Namespace) -> int:
    from storage.outbox import Outbox
    from storage.times import utcnow

    with _database(settings) as (engine, _index):
        count = Outbox(engine).resend(utcnow(), ids=args.ids or None)
    what = "chosen" if args.ids else "dead-lettered"
    print(f"{count} {what} deliver{'y' if count == 1 else 'ies'} queued again")
    return 0 if count or not args.ids else EXIT_FAILURE


def _serve(settings: Settings, _args: argparse.Namespace) -> int:
    from node.service import serve

    return serve(settings)


def _check_config(settings: Settings, _args: argparse.Namespace) -> int:
    print(f"configuration OK ({settings.config_dir})")
    print(f"  node: AE {settings.node.ae_title!r} on {settings.node.host}:{settings.node.port}")
    print(f"  storage root: {settings.storage_root}")
    print(f"  index database: {_redacted(settings.database_url)}")
    print(f"  min free bytes: {settings.storage.min_free_bytes}")
    for peer in settings.peers:
        port = peer.port if peer.port is not None else "no port (receive only)"
        print(f"  peer {peer.name}: AE {peer.ae_title!r} at {peer.host}, port {port}")
    if not settings.peers:
        print("  no peers: every association will be refused")
    return 0


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _echo(settings: Settings, args: argparse.Namespace) -> int:
    from node.dicom.scu import echo

    peer = settings.peer(args.peer)
    status = echo(settings.node, peer)
    print(f"C-ECHO {peer.name} ({peer.ae_title}@{peer.host}:{peer.port}): status 0x{status:04X}")
    return 0 if status == 0 else EXIT_FAILURE


def _studies(settings: Settings, args: argparse.Namespace) -> int:
    with _database(settings) as (_engine, index):
        rows = [
            {
                "study_instance_uid": s.study_instance_uid,
                "modalities": list(s.modalities),
                "instances": s.instance_count,
                "first_received": s.first_received_at.isoformat(),
                "last_received": s.last_received_at.isoformat(),
            }
            for s in index.studies()
        ]
    _emit(
        rows,
        args.json,
        ["study_instance_uid", "modalities", "instances", "first_received", "last_received"],
    )
    return 0


def _instances(settings: Settings, args: argparse.Namespace) -> int:
    with _database(settings) as (_engine, index):
        found = index.instances(args.study_uid)
    if not found:
        print(f"breastnode: no instances stored for study {args.study_uid}", file=sys.stderr)
        return EXIT_FAILURE
    rows = [
        {
            "sop_instance_uid": i.sop_instance_uid,
            "sop_class_uid": i.sop_class_uid,
            "transfer_syntax_uid": i.transfer_syntax_uid,
            "path": str(settings.storage_root / i.file_path),
            "size": i.file_size,
            "sha256": i.sha256,
            "purged_at": i.purged_at.isoformat() if i.purged_at else None,
        }
        for i in found
    ]
    _emit(
        rows,
        args.json,
        ["sop_instance_uid", "sop_class_uid", "transfer_syntax_uid", "path", "size", "sha256"],
    )
    return 0


@contextmanager
def _database(settings: Settings) -> Iterator[tuple[Engine, InstanceIndex]]:
    """The migrated index database for one command, disposed afterwards."""
    from node.service import open_index

    engine, index = open_index(settings)
    try:
        yield engine, index
    finally:
        engine.dispose()


def _emit(rows: list[dict[str, Any]], as_json: bool, columns: list[str]) -> None:
    if as_json:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    table = [[_cell(row[c]) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in table]) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row_cells in table:
        print("  ".join(v.ljust(w) for v, w in zip(row_cells, widths, strict=True)).rstrip())
    print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)
