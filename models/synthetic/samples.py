"""What ``breastnode sample-study DIR`` writes: a SYNTHETIC four-view screening mammography
study to try the node with (upload it to a PACS or Orthanc, push it to the node, see the
results).

The images are the demo models' phantoms (a lesion in one breast; from the command, both
breasts of one BI-RADS composition, which the demo density model reads), stored as MG For
Presentation with 14 bits in 16; every identifier says SYNTHETIC and no attribute comes from a
person. A phantom is drawn in millimetres on a full-field detector (0.1 mm pixels at
3328 x 2560), so at any size the breast keeps its size and the lesion is 5-15 mm across; the
Pixel Spacing says how large a pixel is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from models.synthetic.dicom import MG_FOR_PRESENTATION, VIEW_CODES, synthetic_dataset
from models.synthetic.phantoms import PhantomView, phantom_study, to_stored_values

MARK = "SYNTHETIC SAMPLE - NOT A PATIENT - NOT FOR CLINICAL USE"


def write_sample_study(
    folder: Path,
    lesion_side: str | None = "L",
    size: tuple[int, int] = (1024, 832),
    seed: int = 0,
    composition: str | None = None,
) -> list[Path]:
    """Write the four views (R CC, R MLO, L CC, L MLO) into ``folder``; their paths.
    ``composition``: the breasts' BI-RADS composition, a-d (``sample-study`` gives one); None:
    the plain phantom texture the demo lesion model's figures were measured on."""
    study_uid, series_uid = generate_uid(), generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    views = sample_views(lesion_side, size, seed, composition)
    for number, phantom in enumerate(views, start=1):
        ds = _view(study_uid, series_uid, number, phantom.laterality, phantom.view)
        pixels = to_stored_values(phantom.image)
        ds.Rows, ds.Columns = pixels.shape
        ds.PixelSpacing = ds.ImagerPixelSpacing = [phantom.pixel_spacing_mm] * 2
        ds.PixelData = pixels.tobytes()
        path = folder / f"sample-{number}-{phantom.laterality}-{phantom.view}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def sample_views(
    lesion_side: str | None = "L",
    size: tuple[int, int] = (1024, 832),
    seed: int = 0,
    composition: str | None = None,
) -> list[PhantomView]:
    """The phantoms ``write_sample_study`` stores for these arguments, with their lesion's
    place and composition: the truth a check of the demo models on the sample compares with."""
    return phantom_study(np.random.default_rng(seed), lesion_side, size, composition)


def sample_instance(sop_class: str, study_uid: str, series_uid: str) -> Dataset:
    """A new instance of the SYNTHETIC sample patient and study: file meta, UIDs, the
    patient and study modules, equipment, and the SYNTHETIC marks."""
    ds = synthetic_dataset(
        sop_class,
        study_uid,
        series_uid,
        name="SYNTHETIC^SAMPLE",
        patient_id="SYNTHETIC-SAMPLE",
        birth_date="",
    )
    ds.AccessionNumber = ""
    ds.Manufacturer = "BreastNode sample-study"
    ds.ImageComments = ds.StudyDescription = MARK
    return ds


def _view(study_uid: str, series_uid: str, number: int, laterality: str, view: str) -> Dataset:
    ds = sample_instance(MG_FOR_PRESENTATION, study_uid, series_uid)
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "MG", 1, number
    ds.SeriesDescription = "SYNTHETIC SAMPLE MAMMOGRAPHY"
    ds.ImageLaterality = laterality
    ds.ViewPosition = view
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = (
        VIEW_CODES[view][0],
        "SCT",
        VIEW_CODES[view][1],
    )
    ds.ViewCodeSequence = Sequence([item])
    # columns run toward the nipple on left views (A), away from it on right views (P)
    across = "R" if laterality == "L" else "L"
    ds.PatientOrientation = [
        "A" if laterality == "L" else "P",
        across if view == "CC" else f"F{across}",
    ]
    ds.BodyPartExamined = "BREAST"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.BurnedInAnnotation = "NO"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 14, 13, 0
    ds.WindowCenter, ds.WindowWidth = 8192, 16384
    # DX and MG image modules: Type 1 and 2 attributes dciodvfy checks
    region = Dataset()
    region.CodeValue, region.CodingSchemeDesignator, region.CodeMeaning = (
        "76752008",
        "SCT",
        "Breast",
    )
    ds.AnatomicRegionSequence = Sequence([region])
    ds.PixelIntensityRelationship, ds.PixelIntensityRelationshipSign = "LOG", -1
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "US"
    ds.PresentationLUTShape, ds.LossyImageCompression = "IDENTITY", "00"
    ds.DetectorType, ds.PositionerType = "DIRECT", "MAMMOGRAPHIC"
    ds.BreastImplantPresent, ds.OrganExposed = "NO", "BREAST"
    item.ViewModifierCodeSequence = Sequence()  # Type 2: present, empty
    ds.AcquisitionContextSequence = Sequence()
    ds.ContentDate, ds.ContentTime = "20260101", "090100"
    ds.AcquisitionDate, ds.AcquisitionTime = "20260101", "090100"
    return ds
