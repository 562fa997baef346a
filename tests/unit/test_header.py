"""Header checks and extraction of the index records from a received data set."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from models.synthetic import (
    MG_FOR_PRESENTATION,
    SyntheticPatient,
    garbage_file,
    mammogram,
    write,
)
from node.dicom.header import (
    HeaderMismatch,
    HeaderUnreadable,
    read_header,
    records_from,
)
from tests.support.dicom_bytes import unvalidated


def test_records_carry_what_later_stages_need(tmp_path: Path) -> None:
    patient = SyntheticPatient()
    ds = mammogram(patient, laterality="R", view="MLO", rows=40, columns=30)
    ds.AcquisitionDate, ds.AcquisitionTime = "20260101", "090000"
    header = records_from(read_header(write(ds, tmp_path)), ds.SOPClassUID, ds.SOPInstanceUID)
    assert header.patient.patient_id == patient.patient_id
    assert header.patient.birth_date == patient.birth_date
    assert header.study.study_instance_uid == ds.StudyInstanceUID
    assert header.series.modality == "MG"
    assert header.series.body_part_examined == "BREAST"
    assert header.series.laterality == "R"
    instance = header.instance
    assert instance.image_laterality == "R"
    assert instance.view_position == "MLO"
    assert instance.view_code == "399368009"
    assert instance.image_type == "ORIGINAL\\PRIMARY\\"
    assert (instance.rows, instance.columns, instance.number_of_frames) == (40, 30, None)
    assert instance.acquisition_datetime == "20260101090000"
    assert instance.transfer_syntax_uid == "1.2.840.10008.1.2.1"


def test_frame_laterality_is_used_for_enhanced_objects(tmp_path: Path) -> None:
    ds = mammogram(rows=8, columns=8)
    del ds.ImageLaterality
    anatomy = Dataset()
    anatomy.FrameLaterality = "L"
    group = Dataset()
    group.FrameAnatomySequence = Sequence([anatomy])
    ds.SharedFunctionalGroupsSequence = Sequence([group])
    header = records_from(read_header(write(ds, tmp_path)), ds.SOPClassUID, ds.SOPInstanceUID)
    assert header.instance.image_laterality == "L"


def test_uids_must_match_the_command(tmp_path: Path) -> None:
    ds = mammogram(rows=8, columns=8)
    parsed = read_header(write(ds, tmp_path))
    with pytest.raises(HeaderMismatch, match="SOP Instance UID"):
        records_from(parsed, MG_FOR_PRESENTATION, "1.2.3.4")
    with pytest.raises(HeaderMismatch, match="SOP Class UID"):
        records_from(parsed, "1.2.840.10008.5.1.4.1.1.4", ds.SOPInstanceUID)


def test_missing_study_uid_is_a_mismatch(tmp_path: Path) -> None:
    ds = mammogram(rows=8, columns=8)
    del ds.StudyInstanceUID
    parsed = read_header(write(ds, tmp_path))
    with pytest.raises(HeaderMismatch, match="StudyInstanceUID"):
        records_from(parsed, ds.SOPClassUID, ds.SOPInstanceUID)


@pytest.mark.filterwarnings("ignore:Expected explicit VR:UserWarning")  # pydicom on garbage
@pytest.mark.parametrize(
    "garbage",
    [b"\xff\x13" * 100, bytes(range(256)) * 8, b"this is not a DICOM data set " * 20],
    ids=["repeated", "bytes", "text"],
)
def test_garbage_is_unreadable(tmp_path: Path, garbage: bytes) -> None:
    path = garbage_file(tmp_path, garbage)
    with pytest.raises(HeaderUnreadable):
        read_header(path)


@pytest.mark.filterwarnings("ignore:The value length:UserWarning")  # the over-long UID
def test_errors_never_quote_values(tmp_path: Path) -> None:
    patient = SyntheticPatient()
    ds = mammogram(patient, rows=8, columns=8)
    ds.StudyInstanceUID = "9" * 70
    parsed = read_header(write(ds, tmp_path))
    with pytest.raises(HeaderMismatch) as caught:
        records_from(parsed, ds.SOPClassUID, ds.SOPInstanceUID)
    assert "9" * 70 not in str(caught.value)
    assert patient.patient_id not in str(caught.value)


def test_dates_that_are_no_dates_are_indexed_as_absent(tmp_path: Path) -> None:
    """Stored as received; the index leaves them out (its columns hold eight characters, and
    what reads the index needs dates)."""
    with unvalidated():
        ds = mammogram(SyntheticPatient(birth_date="19601345"), rows=8, columns=8)
        ds.StudyDate, ds.ContentDate = "2026-01-01", "20260230"
        header = records_from(read_header(write(ds, tmp_path)), ds.SOPClassUID, ds.SOPInstanceUID)
    assert header.patient.birth_date is None
    assert header.study.study_date is None
    assert header.instance.content_date is None


def test_values_too_long_for_the_index_are_left_out(tmp_path: Path) -> None:
    with unvalidated():
        ds = mammogram(SyntheticPatient(), rows=8, columns=8, laterality="L")
        ds.Laterality, ds.ViewPosition = "LEFT", "CRANIOCAUDAL VIEW"
        header = records_from(read_header(write(ds, tmp_path)), ds.SOPClassUID, ds.SOPInstanceUID)
    assert header.series.laterality is None
    assert header.instance.view_position is None
    assert header.instance.image_laterality == "L"


def test_a_nul_inside_an_indexed_value_is_a_mismatch(tmp_path: Path) -> None:
    with unvalidated():
        ds = mammogram(SyntheticPatient(), rows=8, columns=8)
        ds.AccessionNumber = "SYN\x00ACC"
        path = write(ds, tmp_path)
    with pytest.raises(HeaderMismatch, match="AccessionNumber holds a NUL character"):
        records_from(read_header(path), ds.SOPClassUID, ds.SOPInstanceUID)
