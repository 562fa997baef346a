"""The patient and study values result objects copy, emptied where they break their VR."""

from __future__ import annotations

from models.synthetic import SyntheticPatient, mammogram
from node.results.source_values import empty_what_results_cannot_carry
from tests.support.dicom_bytes import unvalidated


def test_values_that_break_their_vr_are_emptied_and_the_others_kept() -> None:
    with unvalidated():
        broken = mammogram(SyntheticPatient(birth_date="1960-01-01"), rows=8, columns=8)
        broken.StudyTime, broken.PatientSex, broken.PatientBirthTime = "25:00", "female", "1230"
    fine = mammogram(SyntheticPatient(), rows=8, columns=8)
    fine.StudyTime, fine.PatientBirthTime = "093000.123", "12"
    kept = (fine.PatientBirthDate, fine.StudyDate, fine.StudyTime, fine.PatientSex)
    emptied = empty_what_results_cannot_carry([broken, fine])
    assert sorted(emptied) == ["PatientBirthDate", "PatientSex", "StudyTime"]
    assert (broken.PatientBirthDate, broken.StudyTime, broken.PatientSex) == ("", "", "")
    assert broken.PatientBirthTime == "1230" and broken.StudyDate == "20260101"
    assert (fine.PatientBirthDate, fine.StudyDate, fine.StudyTime, fine.PatientSex) == kept
