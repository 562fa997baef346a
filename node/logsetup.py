"""Logging configuration, done once by the CLI; modules only call logging.getLogger."""

from __future__ import annotations

import logging
import sys
from typing import Any

from node.printable import one_line

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class OneRecordPerLine(logging.Formatter):
    """Each record's message on one line, whoever logged it: a received value with a
    newline in it (pynetdicom and pydicom log some as they are) cannot forge a line. A
    traceback keeps its lines, each indented, so none of them reads as a record of its own."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = one_line(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        return "\n".join(
            "    " + one_line(line) for line in super().formatException(ei).split("\n")
        )


def configure(level: str) -> None:
    # a handler of its own rather than basicConfig, which does nothing when the root logger
    # has one already (a test process running the command in-process has its own)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneRecordPerLine(FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    # pynetdicom is chatty at INFO (a line per message); keep it to warnings unless debugging.
    logging.captureWarnings(True)
    logging.getLogger("alembic").setLevel("WARNING")
    # APScheduler's executor logs two INFO lines per job run ("Running job ...", "... executed
    # successfully"): with sweeps every second, about 170,000 lines a day of a hospital's
    # journal. Its warnings (missed runs, errors) stay; our own lines say what the jobs did.
    for name in ("pynetdicom", "apscheduler"):
        logging.getLogger(name).setLevel("DEBUG" if level == "DEBUG" else "WARNING")
