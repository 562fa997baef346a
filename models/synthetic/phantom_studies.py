"""Phantom screening studies written as MG DICOM, each view's lesion at a known place: the
truth the demo models' accuracy tests and the benchmarks compare results with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.uid import generate_uid

from models.synthetic.dicom import SyntheticPatient, mammogram, write
from models.synthetic.phantoms import PhantomView, phantom_study, to_stored_values


@dataclass(frozen=True)
class PhantomCase:
    study_uid: str
    lesion_side: str | None
    views: tuple[PhantomView, ...]
    paths: tuple[Path, ...]  # one file per view, same order
    sop_instance_uids: tuple[str, ...]


def phantom_dicom_study(
    rng: np.random.Generator,
    lesion_side: str | None,
    folder: Path,
    patient: SyntheticPatient | None = None,
) -> PhantomCase:
    """Four MG views (R CC, R MLO, L CC, L MLO) of a phantom, the lesion in both views of
    ``lesion_side``; right views are stored mirrored, as a unit displays them."""
    patient = patient or SyntheticPatient()
    study_uid = generate_uid()
    views = tuple(phantom_study(rng, lesion_side))
    paths, uids = [], []
    for number, view in enumerate(views, start=1):
        ds = mammogram(
            patient,
            study_uid=study_uid,
            laterality=view.laterality,
            view=view.view,
            rows=view.image.shape[0],
            columns=view.image.shape[1],
        )
        ds.PixelData = to_stored_values(view.image, bits=14).tobytes()
        ds.PixelSpacing = [view.pixel_spacing_mm, view.pixel_spacing_mm]
        ds.ImagerPixelSpacing = [view.pixel_spacing_mm, view.pixel_spacing_mm]
        ds.InstanceNumber = number
        paths.append(write(ds, folder))
        uids.append(str(ds.SOPInstanceUID))
    return PhantomCase(study_uid, lesion_side, views, tuple(paths), tuple(uids))
