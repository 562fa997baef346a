"""``breastnode serve``: run the node until stopped."""

from __future__ import annotations

import argparse
from typing import Any

from node.config import Settings


def add_commands(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the node until stopped")
    serve.set_defaults(run=_serve)


def _serve(settings: Settings, _args: argparse.Namespace) -> int:
    from node.runtime.supervisor import serve

    return serve(settings)
