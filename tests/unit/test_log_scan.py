"""The log scan each test is judged by can fail: it finds a planted name, ID or birth date,
ignores what merely contains the digits, and reads only what was logged after it began."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from models.synthetic import SyntheticPatient, record_seeded_patients
from tests.support.helpers import REPO
from tests.support.log_scan import LogWatch, patient_data_in


def test_finds_each_kind_of_patient_data() -> None:
    patient = SyntheticPatient()
    family, given = patient.patient_name.split("^")[:2]
    assert patient_data_in("nothing personal here", [patient]) == []
    assert patient_data_in(f"hello {given}", [patient]) == [f"patient name {given}"]
    assert patient_data_in(f"id={patient.patient_id}", [patient]) == [
        f"patient ID {patient.patient_id}"
    ]
    assert patient_data_in(f"born {patient.birth_date} in", [patient]) == [
        f"birth date {patient.birth_date}"
    ]
    assert patient_data_in(f"uid 1.2.{patient.birth_date}.3", [patient]) == []
    del family


def test_reads_only_what_came_after_the_watch_began(tmp_path: Path) -> None:
    old = tmp_path / "node.log"
    old.write_text("before the test\n")
    watch = LogWatch(tmp_path)
    with old.open("a") as log:
        log.write("during the test\n")
    (tmp_path / "new.log").write_text("a new node\n")
    text = watch.new_text()
    assert "during the test" in text and "a new node" in text
    assert "before the test" not in text


def test_the_run_records_every_patient_made_and_a_fresh_process_none() -> None:
    made = SyntheticPatient()
    assert made in record_seeded_patients()  # the suite asked for the record (conftest)
    fresh = subprocess.run(
        [sys.executable, "-c", UNASKED], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert fresh.stdout.split() == ["True", "True"]


# a process that makes patients without asking (sample-study) keeps no list of them; one
# that asks keeps those made after
UNASKED = """
from models.synthetic import SyntheticPatient, dicom, record_seeded_patients
SyntheticPatient()
print(dicom._seeded is None)
records = record_seeded_patients()
print(records == [SyntheticPatient()])
"""
