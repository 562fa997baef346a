"""``breastnode audit verify | export``: the node's hash-chained audit trail."""

from __future__ import annotations

import argparse
from typing import Any

from node.cli.common import EXIT_FAILURE, open_database
from node.config import Settings


def add_commands(commands: Any) -> None:
    audit = commands.add_parser("audit", help="the audit trail")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = audit_commands.add_parser("verify", help="check the hash chain of every record")
    verify.set_defaults(run=_audit_verify)
    export = audit_commands.add_parser("export", help="print the records as XML")
    export.add_argument("--after", type=int, default=0, help="only records after this number")
    export.set_defaults(run=_audit_export)


def _audit_verify(settings: Settings, _args: argparse.Namespace) -> int:
    from storage.audit import AuditTrail

    with open_database(settings) as (engine, _index):
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

    with open_database(settings) as (engine, _index):
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
