"""A stand-in analysis for pipeline tests: one Secondary Capture per study version.

It is not a model: it reads the study's first instance for patient and study attributes and
makes a small 8-bit image saying so. Its behaviour can be slowed or broken from the
environment, to test crashes and retries:

- BREASTNODE_TEST_ANALYSIS_SLEEP: seconds to sleep before answering
- BREASTNODE_TEST_ANALYSIS_FAIL_FILE: if this file exists, raise (and delete it)
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from node.pipeline.analysis import StudyInput

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
PATIENT_AND_STUDY = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
)


def analyse(study: StudyInput) -> list[Dataset]:
    delay = float(os.environ.get("BREASTNODE_TEST_ANALYSIS_SLEEP", "0"))
    if delay:
        time.sleep(delay)
    fail_file = os.environ.get("BREASTNODE_TEST_ANALYSIS_FAIL_FILE")
    if fail_file and Path(fail_file).exists():
        Path(fail_file).unlink()
        raise RuntimeError("stand-in analysis told to fail once")
    source = dcmread(study.instances[0].path, stop_before_pixels=True)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for keyword in PATIENT_AND_STUDY:
        if keyword in source:
            setattr(ds, keyword, source[keyword].value)
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 900 + study.version
    ds.InstanceNumber = 1
    ds.Modality = "OT"
    ds.ConversionType = "WSD"
    ds.SeriesDescription = f"STAND-IN TEST RESULT v{study.version} - NOT FOR CLINICAL USE"
    ds.ImageComments = f"{len(study.instances)} instances; {len(study.previous_results)} earlier"
    pixels = np.zeros((16, 16), dtype=np.uint8)
    pixels[4:12, 4:12] = 255
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = pixels.tobytes()
    return [ds]
