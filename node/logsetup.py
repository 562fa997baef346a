"""Logging configuration, done once by the CLI; modules only call logging.getLogger."""

from __future__ import annotations

import logging
import sys


def configure(level: str) -> None:
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # pynetdicom is chatty at INFO (a line per message); keep it to warnings unless debugging.
    logging.captureWarnings(True)
    logging.getLogger("alembic").setLevel("WARNING")
    logging.getLogger("pynetdicom").setLevel("DEBUG" if level == "DEBUG" else "WARNING")
