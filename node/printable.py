"""Received strings made safe to log: one line, printable ASCII, bounded; failures told
without the received values a library puts in its messages.

A UID, AE title or any other value a peer sends may hold a newline (which would start a
forged log line), other control characters, non-ASCII text or kilobytes of padding. Every
received string that reaches a log line or an audit description goes through
:func:`printable` first. It is for identifiers and technical values only: patient data
never goes to the operational log, escaped or not.
"""

from __future__ import annotations

from models.errors import ModelError
from node.errors import NodeError

LIMIT = 96  # characters of the value shown; a UID is at most 64


def printable(value: object, limit: int = LIMIT) -> str:
    """``value`` as one line of printable ASCII: control and non-ASCII characters and the
    backslash escaped as Python writes them (``\\n``, ``\\x00``, ``\\xe9``), cut after
    ``limit`` characters with the full length said."""
    text = value if isinstance(value, str) else str(value)
    shown = text[:limit].encode("unicode_escape").decode("ascii")
    if len(text) > limit:
        shown += f"... ({len(text)} characters)"
    return shown


def one_line(text: str) -> str:
    """A log message with its line breaks and other control characters escaped (printable
    non-ASCII text is kept): what the log formatter applies to every message, whoever
    wrote it (a library may log a received value as it is)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def failure_text(exc: BaseException) -> str:
    """A failure as operational output (a job's last error, ``breastnode jobs``) may show it.
    Our own errors (NodeError, ModelError) are written without patient data and keep their
    message; another library's message may quote a received value (pydicom's "Unable to
    convert '1960-13-45' to 'DA' object" quotes a birth date), so only its type and where
    it was raised are told."""
    if isinstance(exc, NodeError | ModelError):
        return f"{type(exc).__name__}: {exc}"
    traceback = exc.__traceback__
    while traceback is not None and traceback.tb_next is not None:
        traceback = traceback.tb_next
    if traceback is None:
        return type(exc).__name__
    frame = traceback.tb_frame
    module = frame.f_globals.get("__name__", "?")
    return f"{type(exc).__name__} in {module}.{frame.f_code.co_name} (message withheld)"
