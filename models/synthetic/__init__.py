"""Synthetic data, the one generator of it: breast phantoms (mammography and DCE MRI) drawn
with their lesions at known places, written as DICOM data sets marked SYNTHETIC (the samples
of ``breastnode sample-study``, and the small objects the tests and benchmarks send), and
labelled training sets. No patient data, nothing downloaded.

The demo models trained on these phantoms are in the submodules ``demo``, ``demo_mri``,
``demo_density`` and ``demo_models`` (with their cache, ``demo_cache``); they import torch,
so this package's face does not.
"""

from models.synthetic.dicom import (
    BREAST_TOMOSYNTHESIS,
    CT_IMAGE,
    MG_FOR_PRESENTATION,
    MG_FOR_PROCESSING,
    MR_IMAGE,
    SYNTHETIC_MARK,
    SyntheticPatient,
    garbage_file,
    mammogram,
    mr_series,
    mr_slice,
    other_modality,
    record_seeded_patients,
    screening_study,
    synthetic_dataset,
    write,
)
from models.synthetic.labelled import phantom_dataset
from models.synthetic.mri_phantoms import DcePhantom, MriLesion, dce_phantom
from models.synthetic.phantom_studies import PhantomCase, phantom_dicom_study
from models.synthetic.phantoms import (
    DETECTOR_MM,
    LESION_DIAMETER_MM,
    Lesion,
    PhantomView,
    phantom_study,
    phantom_view,
    to_stored_values,
)
from models.synthetic.sample_mri import (
    FIELD_OF_VIEW_MM,
    SLICE_THICKNESS_MM,
    write_sample_mri_study,
)
from models.synthetic.samples import MARK, sample_instance, sample_views, write_sample_study

__all__ = [
    "BREAST_TOMOSYNTHESIS",
    "CT_IMAGE",
    "DETECTOR_MM",
    "FIELD_OF_VIEW_MM",
    "LESION_DIAMETER_MM",
    "MARK",
    "MG_FOR_PRESENTATION",
    "MG_FOR_PROCESSING",
    "MR_IMAGE",
    "SLICE_THICKNESS_MM",
    "SYNTHETIC_MARK",
    "DcePhantom",
    "Lesion",
    "MriLesion",
    "PhantomCase",
    "PhantomView",
    "SyntheticPatient",
    "dce_phantom",
    "garbage_file",
    "mammogram",
    "mr_series",
    "mr_slice",
    "other_modality",
    "phantom_dataset",
    "phantom_dicom_study",
    "phantom_study",
    "phantom_view",
    "record_seeded_patients",
    "sample_instance",
    "sample_views",
    "screening_study",
    "synthetic_dataset",
    "to_stored_values",
    "write",
    "write_sample_mri_study",
    "write_sample_study",
]
