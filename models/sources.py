"""From a study's stored files to the 2D images the networks see.

Mammography (2D, For Presentation or For Processing) gives one image per instance;
tomosynthesis gives one maximum-intensity slab per ``slab_frames`` frames; breast MRI gives
one projection per study: the DCE subtraction MIP when the rules find a pre/post pair, else
the MIP of the fallback series. Objects the networks cannot use (SRs, overlays, presentation
states, other modalities) are left out, and said so.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from models.headers import laterality_of, view_of
from models.preprocess import display_values
from models.study import AnalysisImage
from models.volumes import (
    DceRules,
    MrSeries,
    choose_dce_pair,
    dce_projection,
    fallback_series,
    plain_projection,
    read_volume,
    slabs,
)

logger = logging.getLogger(__name__)

MAMMOGRAPHY_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.1.2",  # MG For Presentation
    "1.2.840.10008.5.1.4.1.1.1.2.1",  # MG For Processing
    "1.2.840.10008.5.1.4.1.1.13.1.3",  # Breast Tomosynthesis
    "1.2.840.10008.5.1.4.1.1.13.1.4",  # Breast Projection X-Ray For Presentation
    "1.2.840.10008.5.1.4.1.1.13.1.5",  # Breast Projection X-Ray For Processing
}
DEFERRED_BYTES = 64 * 1024  # larger elements (pixel data) are read from the file when used
MR_CLASSES = {"1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.4.1"}


class SourceError(Exception):
    """A stored instance of the study cannot be used."""


class NothingToAnalyse(SourceError):
    """The study holds no image any network analyses."""


@dataclass(frozen=True)
class SourceOptions:
    slab_frames: int = 10  # tomosynthesis frames per maximum-intensity slab
    slab_stride: int | None = None  # frames between slab starts; None: slab_frames
    dce: DceRules = field(default_factory=DceRules)


@dataclass(frozen=True)
class StudySources:
    kind: str  # "mammography" or "mri"
    images: tuple[AnalysisImage, ...]
    skipped: int  # instances left out (not images the networks use)
    # the source data sets the images name (SOP Instance UID -> data set), read once here
    # and handed on to whatever builds objects from them
    datasets: Mapping[str, Dataset] = field(default_factory=dict)


def mammography_images(ds: Dataset, options: SourceOptions) -> list[AnalysisImage]:
    """One image for a 2D instance; one per slab for a multi-frame (tomosynthesis) one."""
    uid, side, view = str(ds.SOPInstanceUID), laterality_of(ds), view_of(ds)
    pixels = ds.pixel_array
    if int(ds.get("NumberOfFrames", 1) or 1) <= 1:
        return [AnalysisImage(uid, display_values(ds, pixels), side, view)]
    stack = display_values(ds, pixels)  # one scaling for the whole stack
    return [
        AnalysisImage(uid, slab.image, side, view, frame=slab.center_frame)
        for slab in slabs(stack, options.slab_frames, options.slab_stride)
    ]


def _seconds(ds: Dataset) -> float | None:
    text = str(ds.get("AcquisitionTime", "") or ds.get("SeriesTime", "") or "").strip()
    if len(text) < 6 or not text[:6].isdigit():
        return None
    return int(text[:2]) * 3600 + int(text[2:4]) * 60 + float(text[4:] or 0)


def percentile_scaled(image: np.ndarray) -> np.ndarray:
    """An MR projection in [0, 1]: its 0.5th to 99.8th percentile (robust to a few hot
    voxels); the demo MRI model is trained on the same scaling."""
    low, high = np.percentile(image, [0.5, 99.8])
    scaled = np.clip((image - low) / max(float(high - low), 1e-6), 0.0, 1.0)
    return np.asarray(scaled, dtype=np.float32)


def _volume(paths: Sequence[Path]) -> np.ndarray:
    """A series as (slices, rows, columns): classic MR slices through SimpleITK, an Enhanced
    MR object (one multi-frame file) as its frames."""
    if len(paths) == 1:
        pixels = np.asarray(dcmread(paths[0]).pixel_array, dtype=np.float32)
        return pixels if pixels.ndim == 3 else pixels[None]
    return read_volume(paths)


def mri_image(headers: Sequence[tuple[Path, Dataset]], options: SourceOptions) -> AnalysisImage:
    """The study's projection, shown on (and referenced to) the middle slice it came from."""
    by_series: dict[str, list[tuple[Path, Dataset]]] = defaultdict(list)
    for path, ds in headers:
        by_series[str(ds.SeriesInstanceUID)].append((path, ds))
    series = []
    for uid, members in by_series.items():
        times = [t for t in (_seconds(ds) for _, ds in members) if t is not None]
        description = str(members[0][1].get("SeriesDescription", "") or "")
        paths = tuple(path for path, _ in members)
        series.append(MrSeries(uid, description, min(times) if times else None, paths))
    pair = choose_dce_pair(series, options.dce)
    if pair is not None:
        pre, post = pair
        projection = dce_projection(_volume(pre.paths), _volume(post.paths))
        shown = post
    else:
        chosen = fallback_series(series, options.dce)
        if chosen is None:
            raise NothingToAnalyse("no MR series to analyse")
        logger.info("no DCE pre/post pair found; using the fallback series")
        projection = plain_projection(_volume(chosen.paths))
        shown = chosen
    slices = sorted(
        (ds for path, ds in headers if path in shown.paths),
        key=lambda ds: int(ds.get("InstanceNumber", 0) or 0),
    )
    reference = slices[len(slices) // 2]
    image = percentile_scaled(projection)
    return AnalysisImage(
        str(reference.SOPInstanceUID),
        image,
        None,
        None,
        display_image=image,
        crop=False,
        right_on_low_columns=_right_on_low_columns(reference),
    )


def _right_on_low_columns(ds: Dataset) -> bool | None:
    """For an axial slice, whether the patient's right is on its left half: the row
    direction points to the patient's left (+x in DICOM's LPS). None when not axial."""
    cosines = ds.get("ImageOrientationPatient")
    if cosines is None or len(cosines) != 6:
        return None
    row = np.array(cosines[:3], dtype=np.float64)
    column = np.array(cosines[3:], dtype=np.float64)
    normal = np.cross(row, column)
    if abs(normal[2]) < 0.8 or abs(row[0]) < 0.7:  # not an axial slice read left-right
        return None
    return bool(row[0] > 0)


def study_sources(paths: Sequence[Path], options: SourceOptions = SourceOptions()) -> StudySources:
    """Sort a study's files into what the networks analyse. Each file is read once; pixel
    data is read from it only when an image is made from it."""
    mammography: list[Dataset] = []
    mr_headers: list[tuple[Path, Dataset]] = []
    skipped = 0
    for path in paths:
        try:
            ds = dcmread(path, defer_size=DEFERRED_BYTES)
        except (InvalidDicomError, OSError) as exc:
            raise SourceError(f"a stored instance cannot be read: {type(exc).__name__}") from exc
        sop_class = str(ds.get("SOPClassUID", ""))
        if sop_class in MAMMOGRAPHY_CLASSES:
            mammography.append(ds)
        elif sop_class in MR_CLASSES:
            mr_headers.append((path, ds))
        else:
            skipped += 1
    if mammography:
        images = [image for ds in mammography for image in mammography_images(ds, options)]
        datasets = {str(ds.SOPInstanceUID): ds for ds in mammography}
        return StudySources("mammography", tuple(images), skipped + len(mr_headers), datasets)
    if mr_headers:
        image = mri_image(mr_headers, options)
        [reference] = [ds for _, ds in mr_headers if ds.SOPInstanceUID == image.sop_instance_uid]
        return StudySources("mri", (image,), skipped, {image.sop_instance_uid: reference})
    raise NothingToAnalyse("the study has no mammography or breast MRI image")
