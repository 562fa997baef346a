"""Index records for tests that fill the index directly: from a data set, as the SCP makes
them, or from a few chosen facts."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from pydicom.dataset import Dataset
from pydicom.uid import DigitalMammographyXRayImageStorageForPresentation, ExplicitVRLittleEndian

from node.dicom.header import records_from
from storage.records import (
    InstanceRecord,
    PatientRecord,
    ReceivedInstance,
    Reception,
    SeriesRecord,
    StoredFile,
    StudyRecord,
)

MG = str(DigitalMammographyXRayImageStorageForPresentation)
MR = "1.2.840.10008.5.1.4.1.1.4"  # pydicom.uid.MRImageStorage


def received_instance(
    sop: str,
    study: str,
    *,
    received_at: datetime,
    series: str | None = None,
    sop_class: str = MG,
    modality: str | None = None,
    laterality: str | None = None,
    view: str | None = None,
    patient: PatientRecord | None = None,
    file: StoredFile | None = None,
    calling_ae: str = "STORESCU",
) -> ReceivedInstance:
    """One instance of ``study``; the rest synthetic defaults (series ``study``.1, MG or MR
    by the SOP class, a dummy stored file)."""
    return ReceivedInstance(
        patient=patient or PatientRecord("SYNTHETIC"),
        study=StudyRecord(study_instance_uid=study),
        series=SeriesRecord(
            series_instance_uid=series or f"{study}.1",
            modality=modality or ("MR" if sop_class == MR else "MG"),
        ),
        instance=InstanceRecord(
            sop_instance_uid=sop,
            sop_class_uid=sop_class,
            transfer_syntax_uid=ExplicitVRLittleEndian,
            image_laterality=laterality,
            view_position=view,
        ),
        file=file or StoredFile(f"objects/synthetic/{sop}.dcm", 1, "0" * 64),
        reception=Reception(calling_ae, "127.0.0.1", received_at),
    )


def received_from(
    ds: Dataset,
    file: StoredFile,
    received_at: datetime,
    calling_ae: str = "MODALITY",
    named: bool = False,
) -> ReceivedInstance:
    """The records the SCP makes of a data set (``node.dicom.header``), stored as ``file``;
    the patient's name only when ``named``."""
    header = records_from(ds, str(ds.SOPClassUID), str(ds.SOPInstanceUID))
    patient = header.patient if named else replace(header.patient, patient_name=None)
    return ReceivedInstance(
        patient,
        header.study,
        header.series,
        header.instance,
        file,
        Reception(calling_ae, "127.0.0.1", received_at),
    )
