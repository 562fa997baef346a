"""Received strings made safe to log: one line, printable ASCII, bounded.

A UID, AE title or any other value a peer sends may hold a newline (which would start a
forged log line), other control characters, non-ASCII text or kilobytes of padding. Every
received string that reaches a log line or an audit description goes through
:func:`printable` first. It is for identifiers and technical values only: patient data
never goes to the operational log, escaped or not.
"""

from __future__ import annotations

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
