"""Synthetic DICOM data sets for the tests and benchmarks: small, generated, marked as not a
patient.

Every object carries "SYNTHETIC" in its patient name, institution and image comments. The
patient identifiers are random per ``SyntheticPatient``; a test run that scans the
operational logs for them asks for a record of every one (``record_seeded_patients``).
``synthetic_dataset`` is the one builder of the patient, study and SOP common modules, also
used by the samples (``models.synthetic.samples``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
    BreastTomosynthesisImageStorage,
    CTImageStorage,
    DigitalMammographyXRayImageStorageForPresentation,
    DigitalMammographyXRayImageStorageForProcessing,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

MG_FOR_PRESENTATION = DigitalMammographyXRayImageStorageForPresentation
MG_FOR_PROCESSING = DigitalMammographyXRayImageStorageForProcessing
BREAST_TOMOSYNTHESIS = BreastTomosynthesisImageStorage
MR_IMAGE = MRImageStorage
CT_IMAGE = CTImageStorage
SYNTHETIC_MARK = "SYNTHETIC TEST DATA - NOT A PATIENT"

VIEW_CODES = {"CC": ("399162004", "cranio-caudal"), "MLO": ("399368009", "medio-lateral oblique")}


@dataclass(frozen=True)
class SyntheticPatient:
    """Identifying values seeded into the objects (checked absent from operational logs)."""

    patient_id: str = field(default_factory=lambda: f"SYNPID{secrets.token_hex(5).upper()}")
    patient_name: str = field(
        default_factory=lambda: f"SYNTHETIC^PHANTOM{secrets.token_hex(3).upper()}"
    )
    birth_date: str = field(
        default_factory=lambda: (
            f"19{secrets.randbelow(60) + 30}{secrets.randbelow(9) + 1:02d}"
            f"{secrets.randbelow(18) + 10}"
        )
    )

    def __post_init__(self) -> None:
        if _seeded is not None:
            _seeded.append(self)


# None unless a log scan asked for it: a process that makes sample studies keeps no list
_seeded: list[SyntheticPatient] | None = None


def record_seeded_patients() -> list[SyntheticPatient]:
    """From now on, keep every ``SyntheticPatient`` made in this process; the live list."""
    global _seeded
    if _seeded is None:
        _seeded = []
    return _seeded


def mammogram(
    patient: SyntheticPatient | None = None,
    *,
    study_uid: str | None = None,
    series_uid: str | None = None,
    laterality: str = "L",
    view: str = "CC",
    rows: int = 256,
    columns: int = 192,
    sop_class: UID = MG_FOR_PRESENTATION,
    seed: int = 0,
) -> Dataset:
    """A 16-bit MG image with a smooth 'breast' and noise; not anatomy, just plausible pixels."""
    patient = patient or SyntheticPatient()
    ds = _base(patient, sop_class, "MG", study_uid, series_uid)
    ds.ImageLaterality = laterality
    ds.Laterality = laterality
    ds.ViewPosition = view
    code, meaning = VIEW_CODES[view]
    view_item = Dataset()
    view_item.CodeValue = code
    view_item.CodingSchemeDesignator = "SCT"
    view_item.CodeMeaning = meaning
    ds.ViewCodeSequence = Sequence([view_item])
    ds.BodyPartExamined = "BREAST"
    # row then column direction; right views are displayed mirrored (chest wall right)
    toward_nipple, across = ("A", "R") if laterality == "L" else ("P", "L")
    ds.PatientOrientation = [toward_nipple, across if view == "CC" else f"F{across}"]
    ds.PresentationIntentType = (
        "FOR PRESENTATION" if sop_class == MG_FOR_PRESENTATION else "FOR PROCESSING"
    )
    ds.ImageType = ["ORIGINAL", "PRIMARY", ""]
    _pixels(ds, _phantom(rows, columns, seed), bits_stored=14)
    return ds


def screening_study(
    patient: SyntheticPatient | None = None, rows: int = 64, columns: int = 48
) -> list[Dataset]:
    """The four screening views (R CC, L CC, R MLO, L MLO) of one synthetic study."""
    patient = patient or SyntheticPatient()
    study_uid = generate_uid()
    return [
        mammogram(
            patient,
            study_uid=study_uid,
            laterality=lat,
            view=view,
            rows=rows,
            columns=columns,
            seed=n,
        )
        for n, (lat, view) in enumerate([("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO")])
    ]


def mr_slice(
    patient: SyntheticPatient | None = None,
    *,
    study_uid: str | None = None,
    series_uid: str | None = None,
    rows: int = 64,
    columns: int = 64,
    instance_number: int = 1,
    seed: int = 0,
) -> Dataset:
    patient = patient or SyntheticPatient()
    ds = _base(patient, MR_IMAGE, "MR", study_uid, series_uid)
    ds.InstanceNumber = instance_number
    ds.BodyPartExamined = "BREAST"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
    ds.SeriesDescription = "SYNTHETIC DYN T1 FS"
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]  # axial
    ds.ImagePositionPatient = [0, 0, float(instance_number)]
    ds.PixelSpacing = [0.8, 0.8]
    ds.SliceThickness = 1.0
    _pixels(ds, _phantom(rows, columns, seed), bits_stored=12)
    return ds


def mr_series(
    folder: Path,
    patient: SyntheticPatient,
    study_uid: str,
    description: str,
    *,
    size: int = 48,
    slices: int = 6,
    enhancement: float = 0.0,
    lesion_slices: tuple[int, ...] = (4,),
    lesion: tuple[slice, slice] = (slice(20, 26), slice(30, 36)),
    acquisition_time: str | None = None,
    seed: int = 1,
) -> list[Path]:
    """An axial MR series (one file per slice, file names in reverse slice order); an
    enhancing lesion of ``enhancement`` added at ``lesion`` on ``lesion_slices``."""
    first = mr_slice(patient, study_uid=study_uid, rows=size, columns=size)
    paths = []
    for n in range(1, slices + 1):
        ds = mr_slice(
            patient,
            study_uid=study_uid,
            series_uid=first.SeriesInstanceUID,
            rows=size,
            columns=size,
            instance_number=n,
            seed=seed,
        )
        ds.SeriesDescription = description
        if acquisition_time:
            ds.AcquisitionTime = acquisition_time
        pixels = ds.pixel_array.astype(np.float32)
        if n in lesion_slices:
            pixels[lesion] += enhancement
        ds.PixelData = pixels.clip(0, 4095).astype(np.uint16).tobytes()
        paths.append(write(ds, folder, f"slice-{slices + 1 - n}.dcm"))
    return paths


def other_modality(patient: SyntheticPatient | None = None) -> Dataset:
    """A CT slice: a SOP class the node must refuse at the presentation context."""
    ds = _base(patient or SyntheticPatient(), CT_IMAGE, "CT", None, None)
    _pixels(ds, _phantom(32, 32, 1), bits_stored=12)
    return ds


def _base(
    patient: SyntheticPatient,
    sop_class: UID,
    modality: str,
    study_uid: str | None,
    series_uid: str | None,
) -> Dataset:
    ds = synthetic_dataset(
        sop_class,
        study_uid or generate_uid(),
        series_uid or generate_uid(),
        name=patient.patient_name,
        patient_id=patient.patient_id,
        birth_date=patient.birth_date,
    )
    ds.ContentDate = "20260101"
    ds.ContentTime = "090100"
    ds.AccessionNumber = "SYNACC1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.Modality = modality
    ds.Manufacturer = "BreastNode synthetic generator"
    ds.ImageComments = SYNTHETIC_MARK
    return ds


def synthetic_dataset(
    sop_class: str,
    study_uid: str,
    series_uid: str,
    *,
    name: str,
    patient_id: str,
    birth_date: str,
) -> Dataset:
    """A new instance: file meta (Explicit VR Little Endian), UIDs, the patient and study
    modules and the SYNTHETIC institution; the caller adds the rest."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName, ds.PatientID, ds.PatientSex = name, patient_id, "F"
    ds.PatientBirthDate = birth_date
    ds.StudyDate, ds.StudyTime, ds.StudyID = "20260101", "090000", "1"
    ds.ReferringPhysicianName = ""
    ds.InstitutionName = "SYNTHETIC"
    return ds


def _phantom(rows: int, columns: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:columns]
    breast = (((y - rows / 2) / (rows / 2)) ** 2 + (x / columns) ** 2) < 1.0
    image = np.where(breast, 6000 + 3000 * np.cos(y / max(rows, 1) * 3), 200)
    image = image + rng.normal(0, 150, size=(rows, columns))
    return np.clip(image, 0, 16383).astype(np.uint16)


def _pixels(ds: Dataset, pixels: np.ndarray, bits_stored: int) -> None:
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()


def write(ds: Dataset, folder: Path, name: str | None = None) -> Path:
    """Save as a Part 10 file, keeping the File Meta exactly as set (even when it lies)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name or f"{secrets.token_hex(8)}.dcm")
    ds.preamble = b"\x00" * 128
    ds.file_meta.MediaStorageSOPClassUID = ds.file_meta.get(
        "MediaStorageSOPClassUID", ds.SOPClassUID
    )
    ds.save_as(path, enforce_file_format=False)
    return path


def garbage_file(
    folder: Path,
    garbage: bytes,
    sop_class: UID = MG_FOR_PRESENTATION,
    sop_instance: str | None = None,
) -> Path:
    """Valid File Meta Information followed by bytes that are not a data set."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = UID(sop_instance) if sop_instance else generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = DicomBytesIO()
    buffer.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(buffer, meta)
    buffer.write(garbage)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"garbage-{secrets.token_hex(4)}.dcm"
    path.write_bytes(buffer.getvalue())
    return path
