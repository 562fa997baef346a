"""The whole run's operational logs carry no patient names, IDs or birth dates.

Runs last (see conftest): by then every node subprocess and this process have logged, at
DEBUG, the handling of objects whose patient data the synthetic generator seeded.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from models.synthetic import SEEDED


@pytest.mark.log_scan
def test_operational_logs_carry_no_patient_data(run_logs: Path) -> None:
    if not SEEDED:
        pytest.skip("run on its own: no test seeded patient data in this run")
    logs = sorted(run_logs.glob("*.log"))
    text = "\n".join(p.read_text(errors="replace") for p in logs)
    assert "stored SOP Instance" in text, "the run's logs do not show any reception"
    leaks = []
    for patient in SEEDED:
        name_part = patient.patient_name.split("^")[1]
        for label, value in (("name", name_part), ("ID", patient.patient_id)):
            if value in text:
                leaks.append(f"patient {label} {value}")
        if re.search(rf"(?<![\d.]){patient.birth_date}(?![\d.])", text):
            leaks.append(f"birth date {patient.birth_date}")
    assert not leaks, f"patient data in operational logs: {leaks[:5]}"
    print(f"scanned {len(logs)} logs ({len(text)} characters) for {len(SEEDED)} patients")
