"""Finding a real peer's binary (dcmtk, dicom3tools, Orthanc)."""

from __future__ import annotations

import shutil
from pathlib import Path


class ToolMissing(Exception):
    """A peer the caller needs is not installed."""


def find_tool(name: str) -> str:
    """The binary's path: on PATH, or in /usr/sbin or /usr/bin (Orthanc lives in sbin)."""
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None
    )
    if found is None:
        raise ToolMissing(f"{name} is not installed (make test installs it when run as root)")
    return found
