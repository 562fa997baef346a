"""The ``breastnode`` command: the parser assembled from one module per command group, and
``main``, which reads the configuration, sets up logging and runs the chosen command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from models.errors import ModelError
from node import __version__
from node.cli import analyse, audit, models, operations, samples, serve
from node.cli.common import EXIT_CONFIG, EXIT_FAILURE, Command
from node.config import Settings, read_settings
from node.config_search import CONFIG_ENV, NAMED, ConfigSource, find_config, searched
from node.errors import NodeError
from node.logsetup import configure
from storage.errors import StorageError

LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    source = find_config(args.config)
    try:
        settings = read_settings(source.path)
    except NodeError as exc:
        how = "" if source.found_by == NAMED else f" ({source.found_by})"
        print(f"breastnode: configuration error{how}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    _say_which_configuration(source, settings)
    configure(args.log_level or settings.logging.level)
    command: Command = args.run
    try:
        return command(settings, args)
    except (NodeError, StorageError, ModelError) as exc:  # the three layers' roots
        print(f"breastnode: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:  # output piped into head and the like
        sys.stdout = Path(os.devnull).open("w")  # noqa: SIM115 - nothing more is written
        return 0


def _say_which_configuration(source: ConfigSource, settings: Settings) -> None:
    """On stderr, unless the command line named the file: which one was found, or that
    there is none and where the built-in defaults keep the store."""
    if source.found_by == NAMED:
        return
    if source.path is not None:
        print(
            f"breastnode: configuration {source.path.resolve()} ({source.found_by})",
            file=sys.stderr,
        )
        return
    print(
        f"breastnode: no configuration file (none named with --config or ${CONFIG_ENV}, "
        f"none at {searched()}): built-in defaults, store at {settings.storage_root}",
        file=sys.stderr,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="breastnode", description="DICOM AI node for breast imaging."
    )
    parser.add_argument("--version", action="version", version=f"breastnode {__version__}")
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"configuration file (default: ${CONFIG_ENV}, else the first of {searched()})",
    )
    parser.add_argument("--log-level", choices=LOG_LEVELS, help="overrides [logging] level")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (serve, operations, audit, models, samples, analyse):
        group.add_commands(commands)
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
                choices=LOG_LEVELS,
                default=argparse.SUPPRESS,
                help="overrides [logging] level",
            )
            _accept_global_options(command)
