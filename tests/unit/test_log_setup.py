"""The CLI's logging set-up keeps chatty libraries to their warnings at INFO."""

from __future__ import annotations

import io
import logging
import time

from apscheduler.schedulers.background import BackgroundScheduler

from node import logsetup


def test_the_scheduler_runs_jobs_without_a_line_each_at_info() -> None:
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    libraries = {name: logging.getLogger(name).level for name in ("apscheduler", "pynetdicom")}
    stream = io.StringIO()
    try:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        logsetup.configure("INFO")
        root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
        runs: list[float] = []
        scheduler = BackgroundScheduler()
        scheduler.add_job(lambda: runs.append(time.monotonic()), "interval", seconds=0.1)
        scheduler.start()
        try:
            deadline = time.monotonic() + 10
            while len(runs) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            scheduler.shutdown(wait=True)
        logging.getLogger("node.pipeline.scheduler").info("our own line")
        text = stream.getvalue()
        assert len(runs) >= 3
        assert "executed successfully" not in text and "Running job" not in text, text
        assert "our own line" in text
        assert logging.getLogger("apscheduler").getEffectiveLevel() == logging.WARNING
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        root.setLevel(saved[0])
        for handler in saved[1]:
            root.addHandler(handler)
        for name, level in libraries.items():
            logging.getLogger(name).setLevel(level)


def test_a_received_newline_cannot_forge_a_log_line() -> None:
    """Whoever logs a received value as it is (pynetdicom logs a non-conformant UID so), the
    node's log holds one line per record; a traceback's lines are indented."""
    formatter = logsetup.OneRecordPerLine(logsetup.FORMAT)
    forged = "1.2.3\n2026-01-01 00:00:00,000 ERROR node: forged\r\x00"
    record = logging.LogRecord(
        "pynetdicom", logging.WARNING, __file__, 1, "value %r", (forged,), None
    )
    [line] = formatter.format(record).splitlines()
    assert line.endswith("value '1.2.3\\n2026-01-01 00:00:00,000 ERROR node: forged\\r\\x00'")
    plain = logging.LogRecord("node", logging.WARNING, __file__, 1, "UID %s", (forged,), None)
    [line] = formatter.format(plain).splitlines()
    assert "UID 1.2.3\\n2026" in line and "\\r\\x00" in line
    try:
        raise ValueError(forged)
    except ValueError:
        import sys

        failed = logging.LogRecord("node", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    first, *rest = formatter.format(failed).splitlines()
    assert first.endswith("failed") and rest
    assert all(line.startswith("    ") for line in rest)
