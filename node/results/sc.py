"""Secondary Capture heatmap overlays: one per analysed image, shown by any viewer.

Built with highdicom's SCImage from the source dataset (same patient and study, a new series
per breast), referencing the source image (and frame) it was derived from, and carrying what
a hanging protocol places an image by, copied from the source:

- Modality of the source (MG, MR), not highdicom's OT: the SC Equipment Module (PS3.3
  C.8.6.1) defines Modality (type 3) as the device that acquired the data the image was made
  from, overriding the General Series definition, so an MG overlay is valid SC and is picked
  up by mammography hanging protocols (OHIF's needs MG in the study and matches each image by
  its View Code Sequence and Patient Orientation).
- Image Laterality, View Code Sequence (its View Modifier Code Sequence as a sibling, as the
  Breast View Module has it) and Study Description. dciodvfy takes Image Laterality and the
  view code as part of the SC IOD; the modifier and Imager Pixel Spacing make the SC a
  Standard Extended SOP Class (a warning per attribute, no error). View Position is not
  copied: OHIF hangs by the view code, and it would be one more extension.
- Pixel Spacing as the source has it (or its Pixel Measures functional group), with its
  calibration type and description (the SC Image Module includes the Basic Pixel Spacing
  Calibration Macro), and Imager Pixel Spacing where the source has that (MG, at the
  detector). Nominal Scanned Pixel Spacing is left out: it is the spacing on scanned film
  or paper, which an overlay never was; and an uncalibrated Pixel Spacing equals Imager Pixel
  Spacing (PS3.3 10.7.1.3), which copying both as they are keeps.
"""

from __future__ import annotations

import re
from copy import deepcopy

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from models.serving import ImageResult, ModelInfo, frame_laterality
from node.results.provenance import (
    NOT_FOR_CLINICAL_USE,
    ResultContext,
    SeriesPerView,
    contributing_equipment,
    label_like_sources,
)
from node.results.render import Side, annotate, blend, stretch, windowed


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


def overlay_text(
    image: ImageResult, score: float, model: ModelInfo, composition: str | None = None
) -> list[str]:
    where = " ".join(p for p in (image.laterality, image.view) if p)
    frame = f" frame {image.frame}" if image.frame else ""
    lines = [f"{where}{frame}".strip() or "image", f"score {score:.2f}"]
    if composition:
        lines.append(f"density {composition}")  # BI-RADS breast composition
    lines.append(f"{model.name} {model.version}")
    if not model.validated_for_clinical_use:
        lines.append(NOT_FOR_CLINICAL_USE)
    return lines


def label_side(orientation: tuple[str, str]) -> Side:
    """The edge away from the chest wall (the nipple side, mostly air beside the breast in
    CC and MLO views): right when the row direction points anterior. Images with no
    anterior or posterior row direction (axial MRI) get the left edge."""
    return "right" if "A" in orientation[0] else "left"


def heatmap_overlay(
    source: Dataset,
    image: ImageResult,
    score: float,
    model: ModelInfo,
    context: ResultContext,
    series_instance_uid: str,
    instance_number: int,
    series_number: int | None = None,
    composition: str | None = None,
) -> hd.sc.SCImage:
    """``series_number``: the overlay series' own (``build`` gives each breast's series
    one); the SC offset of the version by default. ``composition``: the breast's BI-RADS
    composition, when a density model gave one, for the label."""
    grey = overlay_grey(source, image)
    # a projection (MRI) shows every slice, so every finding; a tomosynthesis frame its own
    on_frame = tuple(
        f
        for f in image.findings
        if image.display_image is not None or f.frame in (None, image.frame)
    )
    orientation = patient_orientation(source)
    text = overlay_text(image, score, model, composition)
    rgb = annotate(blend(grey, image.heatmap), on_frame, text, label_side(orientation))
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=source,
        pixel_array=rgb,
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        series_instance_uid=series_instance_uid,
        series_number=context.series_number(2) if series_number is None else series_number,
        sop_instance_uid=context.new_uid(),
        instance_number=instance_number,
        manufacturer=model.manufacturer,
        laterality=None,  # stated per image instead (``_copy_placement``)
        # highdicom takes one letter per direction; mammography says "FR" for an oblique
        # view, so the full values are set after construction
        patient_orientation=(orientation[0][0], orientation[1][0]),
        transfer_syntax_uid=ExplicitVRLittleEndian,
        contributing_equipment=[contributing_equipment(model, context.device_uid)],
    )
    sc.PatientOrientation = list(orientation)
    # the series' breast and view in its description too ("HEATMAP L CC"): hanging
    # protocols (OHIF's mammography one among them) also match on it
    where = " ".join(p for p in SeriesPerView.key(image.laterality, image.view) if p)
    label_like_sources(sc, model, f"HEATMAP {where}".strip(), source)
    sc.ImageType = ["DERIVED", "SECONDARY"]
    sc.BurnedInAnnotation = "NO"  # the burned-in text names no patient
    sc.DerivationDescription = f"Heatmap of {model.name} {model.version} blended on the source"
    if source.get("Modality"):
        sc.Modality = source.Modality
    _copy_placement(sc, source, image)
    _copy_spacing(sc, source)
    reference = Dataset()
    reference.ReferencedSOPClassUID = source.SOPClassUID
    reference.ReferencedSOPInstanceUID = source.SOPInstanceUID
    if image.frame and int(source.get("NumberOfFrames", 1) or 1) > 1:
        reference.ReferencedFrameNumber = image.frame
    sc.SourceImageSequence = Sequence([reference])
    return sc


PLACEMENT = ("ViewCodeSequence", "ViewModifierCodeSequence")
_MODIFIER = 0x00540222  # View Modifier Code Sequence
CALIBRATION = ("PixelSpacingCalibrationType", "PixelSpacingCalibrationDescription")


def _copy_placement(sc: Dataset, source: Dataset, image: ImageResult) -> None:
    """Image Laterality (the source's, or its frames' Frame Laterality, or the breast the
    result names) and the view, as the source states them. General Series Laterality is
    type 2C for a paired body part, required only where Image Laterality is absent and not
    allowed otherwise (PS3.3 C.7.3.1; dciodvfy checks it): so it is present and empty only
    for an image that states no laterality at all."""
    side = source.get("ImageLaterality") or frame_laterality(source) or image.laterality
    if side:
        sc.ImageLaterality = side
    else:
        sc.Laterality = ""
    for keyword in PLACEMENT:
        if source.get(keyword):
            sc[keyword] = deepcopy(source[keyword])
    # The view's modifiers as siblings of the view, the form of the breast imaging objects'
    # Breast View Module (the MG image nests them in the view item; dciodvfy checks a nested
    # one in an SC as a content item and fails it).
    modifiers: list[Dataset] = []
    for view in sc.get("ViewCodeSequence", []):
        if _MODIFIER in view:
            modifiers.extend(view[_MODIFIER].value)  # decoded, whether read from a file or not
            del view[_MODIFIER]
    if modifiers:
        sc.ViewModifierCodeSequence = Sequence(modifiers)


def _copy_spacing(sc: Dataset, source: Dataset) -> None:
    spacing = source.get("PixelSpacing") or _measured_spacing(source)
    if spacing:
        sc.PixelSpacing = list(spacing)
        for keyword in CALIBRATION:
            if keyword in source:
                sc[keyword] = deepcopy(source[keyword])
    if source.get("ImagerPixelSpacing"):
        sc.ImagerPixelSpacing = list(source.ImagerPixelSpacing)


def _measured_spacing(source: Dataset) -> list[float] | None:
    """The Pixel Measures functional group's spacing (tomosynthesis, enhanced MR), shared by
    every frame."""
    for groups in source.get("SharedFunctionalGroupsSequence", []):
        for measures in groups.get("PixelMeasuresSequence", []):
            if measures.get("PixelSpacing"):
                return list(measures.PixelSpacing)
    return None
