"""The README's command table and the parser name the same commands."""

from __future__ import annotations

import argparse
import re

from node.cli import _parser
from tests.support.helpers import REPO

ROW = re.compile(r"^\| `breastnode ([a-z-]+(?: [a-z-]+)?)", re.M)


def leaves(parser: argparse.ArgumentParser, prefix: str = "") -> set[str]:
    found: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                path = f"{prefix} {name}".strip()
                found |= leaves(sub, path) or {path}
    return found


def test_the_readme_documents_every_command_and_no_other() -> None:
    readme = (REPO / "README.md").read_text()
    commands = leaves(_parser())
    tabled = set(ROW.findall(readme))
    assert tabled <= commands, tabled - commands
    assert {"serve", "studies", "audit verify", "models init-demo", "analyse"} <= tabled
    for command in commands:  # in the table, or in the section about it
        assert f"`breastnode {command}" in readme, command
