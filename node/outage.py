"""Saying once that the database went away, and once that it came back.

Every loop of the node touches the index database about once a second; logged as it
happens, a one-minute outage would be hundreds of identical lines in every process. An
:class:`OutageLog` turns the failures of one outage into one ERROR line when the first
fails and one WARNING line, with the duration and the count, when the first call succeeds
again; the failures in between are only counted.
"""

from __future__ import annotations

import logging
import threading
import time

from storage.db import unavailable

__all__ = ["OutageLog", "unavailable"]

logger = logging.getLogger(__name__)


class OutageLog:
    """The state of one dependency (the index database) as one process's callers see it;
    safe to share between threads."""

    def __init__(self, what: str, consequence: str) -> None:
        self.what = what
        self.consequence = consequence  # what this process does meanwhile, for the first line
        self._lock = threading.Lock()
        self._since: float | None = None
        self._failures = 0

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, error: BaseException) -> None:
        with self._lock:
            self._failures += 1
            if self._since is not None:
                return
            self._since = time.monotonic()
        logger.error(
            "%s unavailable (%s); %s until it is back",
            self.what,
            _describe(error),
            self.consequence,
        )

    def succeeded(self) -> None:
        if self._since is None:  # the common case, without taking the lock
            return
        with self._lock:
            if self._since is None:
                return
            lasted, failures = time.monotonic() - self._since, self._failures
            self._since, self._failures = None, 0
        logger.warning(
            "%s back after %.1f s (%d failed attempt(s) meanwhile)", self.what, lasted, failures
        )


def _describe(error: BaseException) -> str:
    """The innermost error's type and the first line of its message: the driver's words on
    the connection (host, port, reason), never a statement or its parameters, which
    SQLAlchemy adds on later lines."""
    innermost = error
    while innermost.__cause__ is not None:
        innermost = innermost.__cause__
    lines = str(innermost).strip().splitlines()
    return type(innermost).__name__ + (f": {lines[0][:200]}" if lines else "")
