"""Secondary Capture heatmap overlays: one per analysed image, shown by any viewer.

Built with highdicom's SCImage from the source dataset (same patient and study, new series),
referencing the source image (and frame) it was derived from.
"""

from __future__ import annotations

import re

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from models.result import ImageResult, ModelInfo
from node.results.common import (
    NOT_FOR_CLINICAL_USE,
    ResultContext,
    contributing_equipment,
    series_description,
)
from node.results.render import annotate, blend, stretch, windowed


def source_pixels(source: Dataset, image: ImageResult) -> np.ndarray:
    """The 2D image the overlay shows: the MRI projection, the tomosynthesis frame, or the
    source image."""
    if image.display_image is not None:
        return image.display_image
    pixels = source.pixel_array
    if int(source.get("NumberOfFrames", 1) or 1) > 1:
        pixels = pixels[(image.frame or 1) - 1]
    if pixels.ndim != 2:
        raise ValueError("heatmap overlays are made from greyscale images")
    return pixels


def overlay_grey(source: Dataset, image: ImageResult) -> np.ndarray:
    """The 8-bit grey under the heatmap: the MRI projection stretched, or the image as a
    viewer shows it, as the model read it when the result kept it (a 2D image: not
    windowed twice) or from the source's pixels."""
    if image.display_grey is not None and image.display_image is None:
        if image.display_grey.shape != (int(source.Rows), int(source.Columns)):
            raise ValueError("the heatmap is not in the source image's pixel grid")
        return image.display_grey
    pixels = source_pixels(source, image)
    if pixels.shape != image.heatmap.shape:
        raise ValueError("the heatmap is not in the source image's pixel grid")
    return windowed(source, pixels) if image.display_image is None else stretch(pixels)


def patient_orientation(source: Dataset) -> tuple[str, str]:
    """Row and column directions: as the source states them (MG), or from its Image
    Orientation (Patient) (MR); an image with neither cannot be placed and is refused."""
    stated = [str(v) for v in source.get("PatientOrientation", []) or []]
    if len(stated) == 2 and all(re.fullmatch("[APRLHF]{1,3}", v) for v in stated):
        return stated[0], stated[1]
    cosines = source.get("ImageOrientationPatient")
    if cosines is None or len(cosines) != 6:
        raise ValueError("the source has neither Patient Orientation nor Image Orientation")
    return _direction(cosines[:3]), _direction(cosines[3:])


def _direction(vector: list[float]) -> str:
    """The main patient-axis letter(s) of a direction cosine vector (PS3.3 C.7.6.1.1.1)."""
    letters = (("L", "R"), ("P", "A"), ("H", "F"))  # +x is left, +y posterior, +z head
    ranked = sorted(range(3), key=lambda axis: -abs(float(vector[axis])))
    picked = [
        letters[a][0] if float(vector[a]) > 0 else letters[a][1]
        for a in ranked
        if abs(float(vector[a])) > 0.25
    ]
    return "".join(picked[:2]) or letters[ranked[0]][0]


def overlay_text(image: ImageResult, score: float, model: ModelInfo) -> list[str]:
    where = " ".join(p for p in (image.laterality, image.view) if p)
    frame = f" frame {image.frame}" if image.frame else ""
    lines = [
        f"{where}{frame}".strip() or "image",
        f"score {score:.2f}",
        f"{model.name} {model.version}",
    ]
    if not model.validated_for_clinical_use:
        lines.append(NOT_FOR_CLINICAL_USE)
    return lines


def heatmap_overlay(
    source: Dataset,
    image: ImageResult,
    score: float,
    model: ModelInfo,
    context: ResultContext,
    series_instance_uid: str,
    instance_number: int,
) -> hd.sc.SCImage:
    grey = overlay_grey(source, image)
    on_frame = tuple(f for f in image.findings if f.frame in (None, image.frame))
    rgb = annotate(blend(grey, image.heatmap), on_frame, overlay_text(image, score, model))
    orientation = patient_orientation(source)
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=source,
        pixel_array=rgb,
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        series_instance_uid=series_instance_uid,
        series_number=context.series_number(2),
        sop_instance_uid=context.new_uid(),
        instance_number=instance_number,
        manufacturer=model.manufacturer,
        laterality=image.laterality,
        # highdicom takes one letter per direction; mammography says "FR" for an oblique
        # view, so the full values are set after construction
        patient_orientation=(orientation[0][0], orientation[1][0]),
        transfer_syntax_uid=ExplicitVRLittleEndian,
        contributing_equipment=[contributing_equipment(model, context.device_uid)],
    )
    sc.PatientOrientation = list(orientation)
    if image.laterality is None:
        # General Series Laterality is type 2C for a paired body part: present, empty when
        # the image shows both breasts or names neither.
        sc.Laterality = ""
    sc.SeriesDescription = series_description(model, "HEATMAP")
    sc.ImageType = ["DERIVED", "SECONDARY"]
    sc.BurnedInAnnotation = "NO"  # the burned-in text names no patient
    sc.DerivationDescription = f"Heatmap of {model.name} {model.version} blended on the source"
    if "SpecificCharacterSet" in source:
        sc.SpecificCharacterSet = source.SpecificCharacterSet
    reference = Dataset()
    reference.ReferencedSOPClassUID = source.SOPClassUID
    reference.ReferencedSOPInstanceUID = source.SOPInstanceUID
    if image.frame and int(source.get("NumberOfFrames", 1) or 1) > 1:
        reference.ReferencedFrameNumber = image.frame
    sc.SourceImageSequence = Sequence([reference])
    return sc
