"""``breastnode check-config | echo | studies | instances | jobs | deliveries | resend |
requeue``: the node's configuration, its peers, what its index holds, and the dead-lettered
work put back in its queue."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from node.cli.common import EXIT_FAILURE, add_json_option, emit, open_database
from node.config import Settings
from storage.times import utcnow

# The columns each listing's table shows; --json gives every field of its rows.
STUDY_COLUMNS = ("study_instance_uid", "modalities", "instances", "first_received", "last_received")
INSTANCE_COLUMNS = (
    "sop_instance_uid",
    "sop_class_uid",
    "transfer_syntax_uid",
    "path",
    "size",
    "sha256",
)
JOB_COLUMNS = (
    "id",
    "study_instance_uid",
    "version",
    "kind",
    "state",
    "attempts",
    "next_run_at",
    "last_error",
)
DELIVERY_COLUMNS = (
    "id",
    "sop_instance_uid",
    "destination",
    "state",
    "attempts",
    "next_attempt_at",
    "last_status",
    "last_error",
)


def add_commands(commands: Any) -> None:
    check = commands.add_parser("check-config", help="validate the configuration and show it")
    check.set_defaults(run=_check_config)

    echo = commands.add_parser("echo", help="C-ECHO a configured peer")
    echo.add_argument("peer", metavar="PEER_NAME")
    echo.set_defaults(run=_echo)

    studies = commands.add_parser("studies", help="list received studies")
    add_json_option(studies)
    studies.set_defaults(run=_studies)

    instances = commands.add_parser("instances", help="list the stored instances of a study")
    instances.add_argument("study_uid", metavar="STUDY_UID")
    add_json_option(instances)
    instances.set_defaults(run=_instances)
    jobs = commands.add_parser("jobs", help="list analysis jobs")
    add_json_option(jobs)
    jobs.set_defaults(run=_jobs)

    deliveries = commands.add_parser("deliveries", help="list result deliveries (the outbox)")
    add_json_option(deliveries)
    deliveries.set_defaults(run=_deliveries)

    for name, (one, many), run in (
        ("resend", ("delivery", "deliveries"), _resend),
        ("requeue", ("analysis job", "analysis jobs"), _requeue),
    ):
        again = commands.add_parser(
            name, help=f"queue dead-lettered {many} (or the chosen ones) again"
        )
        again.add_argument(
            "ids", metavar="ID", type=int, nargs="*", help=f"{one} ids (default: every dead one)"
        )
        again.set_defaults(run=run)


def _jobs(settings: Settings, args: argparse.Namespace) -> int:
    from storage.queue import JobQueue

    with open_database(settings) as (engine, _index):
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
    emit(rows, args.json, JOB_COLUMNS)
    return 0


def _deliveries(settings: Settings, args: argparse.Namespace) -> int:
    from storage.outbox import Outbox

    with open_database(settings) as (engine, _index):
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
    emit(rows, args.json, DELIVERY_COLUMNS)
    return 0


def _resend(settings: Settings, args: argparse.Namespace) -> int:
    from storage.outbox import Outbox

    with open_database(settings) as (engine, _index):
        return _queued_again(
            Outbox(engine).resend(utcnow(), ids=args.ids or None), args, "deliveries"
        )


def _requeue(settings: Settings, args: argparse.Namespace) -> int:
    from storage.queue import JobQueue

    with open_database(settings) as (engine, _index):
        return _queued_again(JobQueue(engine).requeue(utcnow(), ids=args.ids or None), args, "jobs")


def _queued_again(count: int, args: argparse.Namespace, rows: str) -> int:
    """Say how many; a chosen id that could not be put back is a failure."""
    what = "chosen" if args.ids else "dead-lettered"
    noun = {"deliveries": "delivery", "jobs": "job"}[rows] if count == 1 else rows
    print(f"{count} {what} {noun} queued again")
    return 0 if count or not args.ids else EXIT_FAILURE


def _check_config(settings: Settings, _args: argparse.Namespace) -> int:
    print(f"configuration OK ({settings.config_dir})")
    print(f"  node: AE {settings.node.ae_title!r} on {settings.node.host}:{settings.node.port}")
    absent = "" if settings.storage_root.is_dir() else " (not there yet: serve creates it)"
    print(f"  storage root: {settings.storage_root}{absent}")
    print(f"  index database: {_redacted(settings.database_url)}")
    print(f"  min free bytes: {settings.storage.min_free_bytes}")
    if settings.tls.enabled:
        plain = settings.tls.plain_port
        print(f"  DICOM TLS on port {settings.node.port}; plain port: {plain or 'none'}")
        print(f"  certificate: {settings.path(settings.tls.certificate)}")
        print(f"  CA bundle: {settings.path(settings.tls.ca_file)}")
    else:
        print("  no TLS: the DICOM port is plain")
    for peer in settings.peers:
        port = peer.port if peer.port is not None else "no port (receive only)"
        tls = f", TLS as {peer.identity!r}" if peer.tls else ""
        print(f"  peer {peer.name}: AE {peer.ae_title!r} at {peer.host}, port {port}{tls}")
    if not settings.peers:
        print("  no peers: every association will be refused")
    return 0


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _echo(settings: Settings, args: argparse.Namespace) -> int:
    from node.dicom.scu import echo
    from node.tls import site_tls

    peer = settings.peer(args.peer)
    tls = site_tls(settings) if peer.tls else None
    status = echo(settings.node, peer, tls=None if tls is None else tls.client)
    over = " over TLS" if peer.tls else ""
    print(
        f"C-ECHO {peer.name} ({peer.ae_title}@{peer.host}:{peer.port}){over}: status 0x{status:04X}"
    )
    return 0 if status == 0 else EXIT_FAILURE


def _studies(settings: Settings, args: argparse.Namespace) -> int:
    with open_database(settings) as (_engine, index):
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
    emit(rows, args.json, STUDY_COLUMNS)
    return 0


def _instances(settings: Settings, args: argparse.Namespace) -> int:
    with open_database(settings) as (_engine, index):
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
    emit(rows, args.json, INSTANCE_COLUMNS)
    return 0
