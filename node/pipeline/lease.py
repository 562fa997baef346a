"""Keeping a lease alive while long work runs (an analysis, a large send)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from storage.leases import LeaseLost

logger = logging.getLogger(__name__)


@contextmanager
def heartbeat(beat: Callable[[], None], interval_s: float, what: str) -> Iterator[None]:
    """Call ``beat`` every ``interval_s`` seconds in a thread until the block ends."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(interval_s):
            try:
                beat()
            except LeaseLost:
                logger.warning("lost the lease on %s", what)
                return
            except Exception as exc:  # a database hiccup: try again next beat
                logger.warning("heartbeat for %s failed: %s", what, type(exc).__name__)

    thread = threading.Thread(target=run, name=f"heartbeat-{what}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
