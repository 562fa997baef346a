"""UID values as PS3.5 9.1 defines them, checked before a received one is trusted.

A UID is at most 64 characters of digits and dots; its components are not empty and have no
leading zero (a component of one 0 excepted). Its value may carry one trailing NUL pad byte
to even length (PS3.5 6.2). The identifying UIDs of a received instance go into the index,
the file meta and the results: anything else ("..", "/", NUL, a newline, non-ASCII) is refused
before it gets there. Reasons name the rule broken, never the value.
"""

from __future__ import annotations

import re

UID_MAX_LENGTH = 64
_CHARACTERS = re.compile(r"[0-9.]+")
_COMPONENT = re.compile(r"0|[1-9][0-9]*")


def uid_problem(value: str) -> str | None:
    """Why ``value`` (padding removed) is not a valid UID, or None when it is."""
    if not value:
        return "is empty"
    if len(value) > UID_MAX_LENGTH:
        return f"is longer than {UID_MAX_LENGTH} characters"
    if not _CHARACTERS.fullmatch(value):
        return "holds characters other than digits and dots"
    for component in value.split("."):
        if not component:
            return "has an empty component"
        if not _COMPONENT.fullmatch(component):
            return "has a component with a leading zero"
    return None


def loose_uid_problem(value: str) -> str | None:
    """The rules every UI value of a data set must keep: those of :func:`uid_problem` but
    leading zeros, which some devices write in references the node never uses (the
    identifying UIDs get the full rules), and empty values (a type 2 UI may be empty)."""
    problem = uid_problem(value) if value else None
    return None if problem == "has a component with a leading zero" else problem


def unpadded(raw: bytes) -> str:
    """A UI value's text: one trailing NUL (or, as some writers pad, space) removed. Bytes
    outside ASCII decode to replacement characters, which the rules then refuse."""
    if raw[-1:] in (b"\x00", b" "):
        raw = raw[:-1]
    return raw.decode("ascii", errors="replace")
