"""``breastnode`` commands run inside the calling process, answered as a finished subprocess.

A fresh ``python -m node`` pays for its interpreter and, for the model commands, for
importing torch: seconds a call, minutes over the suite. The tests and the benchmarks call
the same ``main`` the console script does, with what a subprocess would have had of its
own: its arguments, environment variables, working folder, stdout and stderr, and the log
lines the command's logging set-up prints on stderr. What that set-up changes in the process
(a root handler and level, captured warnings, library logger levels) is put back afterwards.
A command that must own a process (``serve``) still runs as one (``harness.node_process``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

# the loggers node.logsetup.configure sets a level on (its handler goes to the captured stderr)
QUIETED = ("alembic", "pynetdicom", "apscheduler")


def run_cli(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """``breastnode *args`` in this process; ``env`` is laid over ``os.environ`` for the call."""
    from node import cli

    out, err = _text_stream(), _text_stream()
    with (
        _environment(env or {}),
        contextlib.chdir(cwd or Path.cwd()),
        logging_restored(),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            code = cli.main(list(args))
        except SystemExit as exc:  # argparse's usage errors, --help, --version
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    return subprocess.CompletedProcess(["breastnode", *args], code, _read(out), _read(err))


def _text_stream() -> io.TextIOWrapper:
    """A text stream with a ``buffer``, as sys.stdout has (binary writers use it)."""
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)


def _read(stream: io.TextIOWrapper) -> str:
    stream.flush()
    buffer = stream.buffer
    assert isinstance(buffer, io.BytesIO)
    return buffer.getvalue().decode("utf-8")


@contextlib.contextmanager
def logging_restored() -> Iterator[None]:
    """The root logger's handlers and level, the quieted loggers' levels and warning capture
    as they were before: what ``node.logsetup.configure`` changes."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in QUIETED}
    try:
        yield
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
        for name, value in levels.items():
            logging.getLogger(name).setLevel(value)
        logging.captureWarnings(False)


@contextlib.contextmanager
def _environment(overrides: Mapping[str, str]) -> Iterator[None]:
    before = {key: os.environ.get(key) for key in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
