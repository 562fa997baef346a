"""What every result-object test checks: the standard's validator and a strict read-back."""

from __future__ import annotations

import subprocess
from collections.abc import Collection
from io import BytesIO
from pathlib import Path

from pydicom import config, dcmread
from pydicom.datadict import dictionary_description
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from tests.support.helpers import require_tool

MAX_WARNINGS = 3


def dciodvfy(path: Path) -> tuple[list[str], list[str]]:
    """(errors, warnings) that dicom3tools' dciodvfy reports for a file."""
    result = subprocess.run(
        [require_tool("dciodvfy"), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = (result.stdout + result.stderr).splitlines()
    return (
        [line for line in lines if line.startswith("Error")],
        [line for line in lines if line.startswith("Warning")],
    )


def validated(ds: Dataset, path: Path, label: str, extended: Collection[str] = ()) -> Dataset:
    """Save ``ds``, require no dciodvfy error and few warnings (listed in the test output),
    and read it back under pydicom's strict validation. ``extended``: keywords of standard
    attributes the object carries on purpose beyond its IOD (a Standard Extended SOP Class);
    dciodvfy's warning for each of them is not counted."""
    ds.save_as(path, enforce_file_format=True)
    errors, warnings = dciodvfy(path)
    print(f"{label}: dciodvfy warnings: {warnings}")
    assert errors == [], errors
    names = {dictionary_description(Tag(k)) for k in extended}
    counted = [w for w in warnings if not any(w.rstrip().endswith(f" {n}") for n in names)]
    assert len(counted) <= MAX_WARNINGS, counted
    config.settings.reading_validation_mode = config.RAISE
    try:
        return dcmread(BytesIO(path.read_bytes()))
    finally:
        config.settings.reading_validation_mode = config.WARN


def dcentvfy(paths: Collection[Path]) -> list[str]:
    """The errors dicom3tools' dcentvfy reports for a set of files: attributes of one
    patient, study, series or equipment that differ between the files that share it."""
    result = subprocess.run(
        [require_tool("dcentvfy"), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = (result.stdout + result.stderr).splitlines()
    return [line for line in lines if line.startswith("Error")]


def dsr2html(path: Path) -> str:
    """dcmtk's rendering of an SR (it also checks the IOD's relationship constraints)."""
    return subprocess.run(
        [require_tool("dsr2html"), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
