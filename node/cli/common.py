"""What the command modules share: the command signature, exit codes, the index database
opened for one command, option parsing and table output."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.config import Settings
from node.config_search import CONFIG_ENV
from node.errors import NodeError
from storage.db import open_index

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from storage.index import InstanceIndex

EXIT_FAILURE = 1
EXIT_CONFIG = 2

Command = Callable[[Settings, argparse.Namespace], int]


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def require_store(settings: Settings) -> None:
    """Refuse, before anything is created, to read a store that is not there: a command run
    with the wrong configuration (or from another folder, with the defaults) must not make
    an empty store and report it empty. Only ``serve`` creates the store."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return  # a database server holds the index: nothing here would be created
    database = Path(url.database)
    if not database.is_file():
        raise NodeError(
            store_missing(settings, f"no index {database}", "start the node (breastnode serve)")
        )


def store_missing(settings: Settings, what: str, remedy: str) -> str:
    """The message of a command that found no store where the configuration puts it."""
    return (
        f"no store at {settings.storage_root} ({what}): name the node's configuration with "
        f"--config or ${CONFIG_ENV}, or {remedy}, which creates it"
    )


@contextmanager
def open_database(settings: Settings) -> Iterator[tuple[Engine, InstanceIndex]]:
    """The node's migrated index database for one command, disposed afterwards; the store
    must exist (:func:`require_store`)."""
    require_store(settings)
    engine, index = open_index(settings.database_url)  # a StorageError is main's to report
    try:
        yield engine, index
    finally:
        engine.dispose()


def parse_size(text: str) -> tuple[int, int]:
    """``--size ROWSxCOLUMNS`` as two integers."""
    try:
        rows, columns = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise NodeError(f"--size {text!r} is not ROWSxCOLUMNS") from None
    return rows, columns


def emit(rows: list[dict[str, Any]], as_json: bool, columns: Sequence[str]) -> None:
    """Rows as JSON, or as an aligned table of the chosen columns with a row count."""
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
