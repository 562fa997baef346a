"""From a study's stored files to the 2D images the networks see.

Mammography (2D, For Presentation or For Processing) gives one image per instance;
tomosynthesis gives one maximum-intensity slab per ``slab_frames`` frames; breast MRI gives
one projection per study: the DCE subtraction MIP when the rules find a pre/post pair, else
the MIP of the fallback series. Objects the networks cannot use (SRs, overlays, presentation
states, other modalities) are left out, and said so.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom import uid as sop
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels.decoders.base import get_decoder

from models.errors import ModelError
from models.serving.breast_view import laterality_of, view_of
from models.serving.preprocess import display_values
from models.serving.study import AnalysisImage, SliceStack
from models.serving.volumes import (
    DceRules,
    MrSeries,
    choose_dce_pair,
    dce_peak_slices,
    dce_projection,
    fallback_series,
    plain_peak_slices,
    plain_projection,
    read_volume,
    slabs,
    slice_position,
)

logger = logging.getLogger(__name__)

MAMMOGRAPHY_CLASSES = {
    sop.DigitalMammographyXRayImageStorageForPresentation,
    sop.DigitalMammographyXRayImageStorageForProcessing,
    sop.BreastTomosynthesisImageStorage,
    sop.BreastProjectionXRayImageStorageForPresentation,
    sop.BreastProjectionXRayImageStorageForProcessing,
}
DEFERRED_BYTES = 64 * 1024  # larger elements (pixel data) are read from the file when used
MR_CLASSES = {sop.MRImageStorage, sop.EnhancedMRImageStorage}


class SourceError(ModelError):
    """A stored instance of the study cannot be used."""


class NothingToAnalyse(SourceError):
    """The study holds no image any network analyses."""


class PixelDataError(SourceError):
    """A stored instance's pixel data cannot be decoded by the decoders installed: the stored
    bytes never change, so neither will the outcome. (No decoder installed for its transfer
    syntax is not this: a RuntimeError, which an installation may mend.)"""


def decoded(ds: Dataset) -> np.ndarray:
    """The instance's pixels; :class:`PixelDataError` when its stream cannot be decoded (a
    length that does not match, a syntax pydicom has no decoder for, or a stream every
    available decoder refuses)."""
    try:
        return np.asarray(ds.pixel_array)
    except (ValueError, NotImplementedError) as exc:
        raise PixelDataError(f"pixel data cannot be decoded ({type(exc).__name__})") from exc
    except RuntimeError as exc:
        if _decoder_available(ds):
            raise PixelDataError(
                "pixel data cannot be decoded (every available decoder refused it)"
            ) from exc
        raise


def _decoder_available(ds: Dataset) -> bool:
    syntax = getattr(ds, "file_meta", Dataset()).get("TransferSyntaxUID")
    try:
        return syntax is not None and bool(get_decoder(syntax).is_available)
    except NotImplementedError:
        return False


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
    # instances left out because their pixel data cannot be decoded: (SOP Instance UID, why)
    unreadable: tuple[tuple[str, str], ...] = ()


def mammography_images(ds: Dataset, options: SourceOptions) -> list[AnalysisImage]:
    """One image for a 2D instance; one per slab for a multi-frame (tomosynthesis) one."""
    uid, side, view = str(ds.SOPInstanceUID), laterality_of(ds), view_of(ds)
    pixels = decoded(ds)
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
    """The study's projection, shown on (and referenced to) the slices it came from: the
    analysis names the slice where a finding's enhancement peaks; until then the image
    stands on the slice of the projection's strongest pixel."""
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
        before, after = _volume(pre.paths), _volume(post.paths)
        projection = dce_projection(before, after)
        peaks = dce_peak_slices(before, after)
        shown = post
    else:
        chosen = fallback_series(series, options.dce)
        if chosen is None:
            raise NothingToAnalyse("no MR series to analyse")
        logger.info("no DCE pair found; using the fallback series")
        volume = _volume(chosen.paths)
        projection, peaks = plain_projection(volume), plain_peak_slices(volume)
        shown = chosen
    stack = slice_stack([ds for path, ds in headers if path in shown.paths], peaks)
    row, column = np.unravel_index(int(np.argmax(projection)), projection.shape)
    reference, _ = stack.references[int(peaks[row, column])]
    image = percentile_scaled(projection)
    return AnalysisImage(
        reference,
        image,
        None,
        None,
        display_image=image,
        crop=False,
        right_on_low_columns=_right_on_low_columns(
            next(ds for _, ds in headers if ds.SOPInstanceUID == reference)
        ),
        slices=stack,
    )


def slice_stack(datasets: Sequence[Dataset], peak_slice: np.ndarray) -> SliceStack:
    """The slices of a projected series in volume order (along the slice normal, as
    ``read_volume`` orders them; an Enhanced MR object's frames in their order) and the
    projection's grid in the patient, from the first slice's Image Orientation (Patient),
    Image Position (Patient) and Pixel Spacing."""
    references: tuple[tuple[str, int | None], ...]
    if len(datasets) == 1:
        [ds] = datasets
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        uid = str(ds.SOPInstanceUID)
        references = tuple((uid, n) for n in range(1, frames + 1)) if frames > 1 else ((uid, None),)
        plane = _plane(ds) or _plane(_first_frame(ds))
    else:
        ordered = sorted(datasets, key=slice_position)
        references = tuple((str(ds.SOPInstanceUID), None) for ds in ordered)
        plane = _plane(ordered[0])
    if int(peak_slice.max(initial=0)) >= len(references):
        raise SourceError("the projected volume has more slices than its series")
    if plane is None:
        return SliceStack(references, peak_slice, None)
    per_column, per_row, origin_x = plane
    rows, columns = peak_slice.shape
    midline = origin_x + (columns - 1) / 2 * per_column + (rows - 1) / 2 * per_row
    return SliceStack(references, peak_slice, (per_column, per_row), midline, origin_x)


def _first_frame(ds: Dataset) -> Dataset:
    """An Enhanced MR object's plane: its first frame's (or the shared) functional groups."""
    flat = Dataset()
    for groups in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        for item in (ds.get(groups) or [Dataset()])[:1]:
            for macro, keyword in (
                ("PlaneOrientationSequence", "ImageOrientationPatient"),
                ("PlanePositionSequence", "ImagePositionPatient"),
                ("PixelMeasuresSequence", "PixelSpacing"),
            ):
                if macro in item and keyword in item[macro][0]:
                    setattr(flat, keyword, item[macro][0][keyword].value)
    return flat


def _plane(ds: Dataset) -> tuple[float, float, float] | None:
    """(patient x per column step, per row step, x of the first pixel) in mm, or None
    without a plane or when the plane has no left-right axis (sagittal)."""
    cosines, position = ds.get("ImageOrientationPatient"), ds.get("ImagePositionPatient")
    spacing = ds.get("PixelSpacing")
    if cosines is None or position is None or spacing is None or len(cosines) != 6:
        return None
    row_x, column_x = float(cosines[0]), float(cosines[3])
    if math.hypot(row_x, column_x) < 0.5:  # the plane hardly spans left-right
        return None
    # Pixel Spacing is (between rows, between columns); a column step runs along the row
    # direction cosines
    return row_x * float(spacing[1]), column_x * float(spacing[0]), float(position[0])


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


def _mammography(
    instances: Sequence[Dataset], options: SourceOptions, skipped: int
) -> StudySources:
    """Each view on its own: one whose pixel data cannot be decoded is left out (and said
    so) and the others are analysed; when none can be, the study fails."""
    images: list[AnalysisImage] = []
    datasets: dict[str, Dataset] = {}
    unreadable: list[tuple[str, str]] = []
    failures: list[PixelDataError] = []
    for ds in instances:
        try:
            images.extend(mammography_images(ds, options))
        except PixelDataError as exc:
            unreadable.append((str(ds.SOPInstanceUID), str(exc)))
            failures.append(exc)
            continue
        datasets[str(ds.SOPInstanceUID)] = ds
    if not datasets:
        raise failures[0]
    return StudySources("mammography", tuple(images), skipped, datasets, tuple(unreadable))


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
        return _mammography(mammography, options, skipped + len(mr_headers))
    if mr_headers:
        image = mri_image(mr_headers, options)
        # every slice of the projected series: the analysis picks the one a result names
        slices = {uid for uid, _ in image.slices.references} if image.slices else set()
        slices.add(image.sop_instance_uid)
        datasets = {
            str(ds.SOPInstanceUID): ds for _, ds in mr_headers if ds.SOPInstanceUID in slices
        }
        return StudySources("mri", (image,), skipped, datasets)
    raise NothingToAnalyse("the study has no mammography or breast MRI image")
