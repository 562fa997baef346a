"""Finding patient data in operational logs. The synthetic generator records every patient
it invents once asked (``models.synthetic.record_seeded_patients``); their names, IDs and
birth dates must never appear in a log line, whatever the level."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from models.synthetic import SyntheticPatient


def patient_data_in(text: str, patients: Iterable[SyntheticPatient]) -> list[str]:
    """What of the patients' data ``text`` shows, named. The text is read once into its words
    and its 8-digit dates, so the cost does not grow with the number of patients times the
    text (the scan runs after every test, over every patient the run has made)."""
    words = set(WORD.findall(text))
    dates = set(DATE.findall(text))
    leaks = []
    for patient in patients:
        name_part = patient.patient_name.split("^")[1]
        for label, value in (("name", name_part), ("ID", patient.patient_id)):
            if value in words:
                leaks.append(f"patient {label} {value}")
        if patient.birth_date in dates:
            leaks.append(f"birth date {patient.birth_date}")
    return leaks


WORD = re.compile(r"[A-Za-z0-9]+")  # synthetic names and IDs are letters and digits
DATE = re.compile(r"(?<![\d.])(\d{8})(?![\d.])")  # not part of a UID or a longer number


class LogWatch:
    """The log files of a folder, read from where they stood when the watch began, so each
    test is judged on what was logged while it ran."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.start = {p: p.stat().st_size for p in folder.glob("*.log")}

    def new_text(self) -> str:
        parts: Sequence[str] = [
            _read_from(path, self.start.get(path, 0)) for path in sorted(self.folder.glob("*.log"))
        ]
        return "\n".join(parts)


def _read_from(path: Path, offset: int) -> str:
    with path.open("rb") as log:
        log.seek(offset)
        return log.read().decode("utf-8", errors="replace")
