"""What ``breastnode sample-study DIR --mri`` writes: a SYNTHETIC dynamic contrast-enhanced
breast MRI study to try the node with: three axial series (pre-contrast, post-contrast 1 and
2) of the demo MRI model's phantom, an enhancing lesion in one breast.

The series descriptions match the node's default DCE rules, so the node subtracts the
pre-contrast series from the first post-contrast series and analyses the projection. The
patient lies prone, feet first; the row direction points to the patient's left, so the
right breast is on the low columns. Every identifier says SYNTHETIC.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from models.synthetic.dicom import MR_IMAGE
from models.synthetic.mri_phantoms import dce_phantom
from models.synthetic.samples import sample_instance

SERIES = (  # description, acquisition time, contrast given
    ("SYNTHETIC DCE T1 PRE", "090000", False),
    ("SYNTHETIC DCE T1 POST 1", "090130", True),
    ("SYNTHETIC DCE T1 POST 2", "090300", True),
)
SLICE_THICKNESS_MM = 3.0
FIELD_OF_VIEW_MM = 340.0


def write_sample_mri_study(
    folder: Path,
    lesion_side: str | None = "L",
    size: tuple[int, int] = (256, 256),
    slices: int = 32,
    seed: int = 0,
    rows_to_patient_left: bool = True,
) -> list[Path]:
    """Write the three series (one file per slice) into ``folder``; their paths.

    ``rows_to_patient_left`` False writes the slices mirrored, the row direction to the
    patient's right (the left breast on the low columns), as Image Orientation (Patient)
    then says: the same patient as a scanner set up the other way would image her."""
    rows, columns = size
    phantom = dce_phantom(
        np.random.default_rng(seed),
        lesion_side,
        (slices, rows, columns),
        FIELD_OF_VIEW_MM,
        SLICE_THICKNESS_MM,
    )
    spacing = phantom.pixel_spacing_mm
    study_uid, frame_of_reference = generate_uid(), generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, ((description, time, contrast), volume) in enumerate(
        zip(SERIES, phantom.phases, strict=True), start=1
    ):
        series_uid = generate_uid()
        across = 1 if rows_to_patient_left else -1
        for index, pixels in enumerate(volume if rows_to_patient_left else volume[:, :, ::-1]):
            ds = sample_instance(MR_IMAGE, study_uid, series_uid)
            ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "MR", number, index + 1
            ds.SeriesDescription = description
            ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = time
            ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = "20260101"
            _mr_image(ds, contrast)
            ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame_of_reference, ""
            ds.ImageOrientationPatient = [across, 0, 0, 0, 1, 0]
            ds.ImagePositionPatient = [
                -across * spacing * columns / 2,
                -spacing * rows / 2,
                (index - slices / 2) * SLICE_THICKNESS_MM,
            ]
            ds.SliceLocation = ds.ImagePositionPatient[2]
            ds.PixelSpacing = [spacing, spacing]
            ds.SliceThickness = ds.SpacingBetweenSlices = SLICE_THICKNESS_MM
            ds.Rows, ds.Columns = rows, columns
            ds.PixelData = np.ascontiguousarray(np.round(pixels).astype(np.uint16)).tobytes()
            path = folder / f"sample-mr-{number}-{index + 1:03d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            paths.append(path)
    return paths


def _mr_image(ds: Dataset, contrast: bool) -> None:
    """The MR Image module's attributes for a fat-suppressed T1 gradient echo."""
    ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
    attributes: dict[str, object] = {
        "PatientPosition": "FFP",
        "BodyPartExamined": "BREAST",
        "Laterality": "",  # both breasts: Type 2C, present and empty
        "ScanningSequence": "GR",
        "SequenceVariant": ["SP", "SS"],
        "ScanOptions": "FS",
        "MRAcquisitionType": "3D",
        "RepetitionTime": 4.5,
        "EchoTime": 2.0,
        "EchoTrainLength": 1,
        "ImagedNucleus": "1H",
        "MagneticFieldStrength": 1.5,
        "SamplesPerPixel": 1,
        "PhotometricInterpretation": "MONOCHROME2",
        "BitsAllocated": 16,
        "BitsStored": 12,
        "HighBit": 11,
        "PixelRepresentation": 0,
        "BurnedInAnnotation": "NO",
        "LossyImageCompression": "00",
        "WindowCenter": 1000,
        "WindowWidth": 2000,
    }
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    if contrast:
        ds.ContrastBolusAgent, ds.ContrastBolusRoute = "SYNTHETIC GADOLINIUM", "IV"
