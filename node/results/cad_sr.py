"""The Mammography CAD SR (TID 4000), which mammography workstations draw as CAD marks.

highdicom has no builder for it (nor a reader: ``highdicom.sr.srread`` refuses the SOP
class; its Comprehensive SR parser reads the same tree), so the tree is assembled from
highdicom content items:

    Mammography CAD Report (111036)                       CONTAINER, TID 4000
      HAS CONCEPT MOD Language of Content Item and Descendants (121049)   TID 1204
      HAS OBS CONTEXT  observer device (TID 1004)
      CONTAINS Image Library (111028)                     one IMAGE per analysed image,
                                                          TID 4020 (below)
      CONTAINS CAD Processing and Findings Summary (111017) = with / without findings
        INFERRED FROM Individual Impression/Recommendation (111034)   per finding
          HAS CONCEPT MOD Rendering Intent (111056)
          CONTAINS Single Image Finding (111059) = finding type
            HAS CONCEPT MOD Rendering Intent; HAS PROPERTIES algorithm name and version,
            Certainty of Finding (111012, %), Center (111010) and Outline (111041),
            each SELECTED FROM its image
      CONTAINS Summary of Detections (111064) = Succeeded
        INFERRED FROM Successful Detections (111063)      CONTAINER, TID 4015
          CONTAINS Detection Performed (111022) = each finding type the model reports
            HAS PROPERTIES algorithm name and version (TID 4019)
      CONTAINS Summary of Analyses (111065) = Not Attempted

Checked against the template text of PS3.16 (current edition where the search found it):
TID 4000 rows 1-4 (root, Language M, Image Library M with TID 4020 entries 1-n) and the
Summary of Detections / Analyses rows (TID 4015 required unless Not Attempted, as in the
parallel TID 4120); TID 4001 (the summary CODE, INFERRED FROM TID 4003 when there are
findings); TID 4003 (Individual Impression/Recommendation CONTAINER, Rendering Intent M,
Single Image Finding 1-n); TID 4019 (Algorithm Name and Version, both M, siblings); TID 4020
rows 1-12, each MC "shall be present if the attribute is in the image": Image Laterality
(0020,0062), Image View (0054,0220) with its modifiers (0054,0222), Patient Orientation Row
and Column (0020,0020), Study Date and Time, Content Date and Time, Horizontal and Vertical
Pixel Spacing ((0018,1164) or (0028,0030), in mm; horizontal is the column spacing, the
second value). TID 4006 (Center M, Outline U, each SELECTED FROM its image; Certainty of
Finding) was not in the searchable text and follows the standard's structure as known.

Every relationship follows the Mammography CAD SR content constraints (PS3.3 Table A.35.5-2;
a CONTAINER, for one, may not be the source of INFERRED FROM), which dcmtk's dsr2html checks
when it reads the document. The document is a Comprehensive SR whose IOD modules the
Mammography CAD SR IOD shares; its SOP Class UID is then set to Mammography CAD SR.
"""

from __future__ import annotations

from collections.abc import Mapping

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import MammographyCADSRStorage

from models.serving import Finding, ImageResult, Shape, StudyResult, shows_both_breasts
from node.results.provenance import ResultContext, graphic_data, label_like_sources, sr_arguments
from node.results.sr import FINDING_TYPES

R = hd.sr.RelationshipTypeValues


def _code(value: str, scheme: str, meaning: str) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(value, scheme, meaning)


CAD_REPORT = _code("111036", "DCM", "Mammography CAD Report")
IMAGE_LIBRARY = _code("111028", "DCM", "Image Library")
FINDINGS_SUMMARY = _code("111017", "DCM", "CAD Processing and Findings Summary")
WITH_FINDINGS = _code("111242", "DCM", "All algorithms succeeded; with findings")
WITHOUT_FINDINGS = _code("111241", "DCM", "All algorithms succeeded; without findings")
IMPRESSION = _code("111034", "DCM", "Individual Impression/Recommendation")
SINGLE_IMAGE_FINDING = _code("111059", "DCM", "Single Image Finding")
RENDERING_INTENT = _code("111056", "DCM", "Rendering Intent")
PRESENTATION_REQUIRED = _code(
    "111150", "DCM", "Presentation Required: Rendering device is expected to present"
)
PRESENTATION_OPTIONAL = _code(
    "111151", "DCM", "Presentation Optional: Rendering device may present"
)
CERTAINTY = _code("111012", "DCM", "Certainty of Finding")
PERCENT = _code("%", "UCUM", "Percent")
CENTER = _code("111010", "DCM", "Center")
OUTLINE = _code("111041", "DCM", "Outline")
ALGORITHM_NAME = _code("111001", "DCM", "Algorithm Name")
ALGORITHM_VERSION = _code("111003", "DCM", "Algorithm Version")
SUMMARY_OF_DETECTIONS = _code("111064", "DCM", "Summary of Detections")
SUMMARY_OF_ANALYSES = _code("111065", "DCM", "Summary of Analyses")
SUCCEEDED = _code("111222", "DCM", "Succeeded")
NOT_ATTEMPTED = _code("111225", "DCM", "Not Attempted")
IMAGE_LATERALITY = _code("111027", "DCM", "Image Laterality")
IMAGE_VIEW = _code("111031", "DCM", "Image View")
LATERALITY = {
    "L": _code("7771000", "SCT", "Left"),
    "R": _code("24028007", "SCT", "Right"),
    "B": _code("51440002", "SCT", "Right and left"),  # an image of both breasts
}
VIEWS = {
    "CC": _code("399162004", "SCT", "cranio-caudal"),
    "MLO": _code("399368009", "SCT", "medio-lateral oblique"),
}
OBSERVER_TYPE = _code("121005", "DCM", "Observer Type")
DEVICE = _code("121007", "DCM", "Device")
DEVICE_UID = _code("121012", "DCM", "Device Observer UID")
DEVICE_NAME = _code("121013", "DCM", "Device Observer Name")
DEVICE_MANUFACTURER = _code("121014", "DCM", "Device Observer Manufacturer")
DEVICE_MODEL = _code("121015", "DCM", "Device Observer Model Name")
# a finding the model gives no type (a "suspicious region"): DCM Finding, as TID 1500 says
GENERIC_FINDING = _code("121071", "DCM", "Finding")
# Single Image Finding is DCID 6014 (Mammography Single Image Finding), which codes a mass
# as SCT 129793001 (formerly SRT F-01796), the concept CAD marks of masses carry
CAD_FINDING_TYPES = {
    **FINDING_TYPES,
    "mass": _code("129793001", "SCT", "Mammography breast density"),
}
ENGLISH = _code("en-US", "RFC5646", "English (United States)")
SUCCESSFUL_DETECTIONS = _code("111063", "DCM", "Successful Detections")
DETECTION_PERFORMED = _code("111022", "DCM", "Detection Performed")
IMAGE_VIEW_MODIFIER = _code("111032", "DCM", "Image View Modifier")
ORIENTATION_ROW = _code("111044", "DCM", "Patient Orientation Row")
ORIENTATION_COLUMN = _code("111043", "DCM", "Patient Orientation Column")
STUDY_DATE = _code("111060", "DCM", "Study Date")
STUDY_TIME = _code("111061", "DCM", "Study Time")
CONTENT_DATE = _code("111018", "DCM", "Content Date")
CONTENT_TIME = _code("111019", "DCM", "Content Time")
HORIZONTAL_SPACING = _code("111026", "DCM", "Horizontal Pixel Spacing")
VERTICAL_SPACING = _code("111066", "DCM", "Vertical Pixel Spacing")
MILLIMETRE = _code("mm", "UCUM", "millimeter")


def _image_reference(source: Dataset, frame: int | None, relationship: R) -> hd.sr.ImageContentItem:
    multi_frame = int(source.get("NumberOfFrames", 1) or 1) > 1
    return hd.sr.ImageContentItem(
        name=_code("111040", "DCM", "Original Source"),
        referenced_sop_class_uid=source.SOPClassUID,
        referenced_sop_instance_uid=source.SOPInstanceUID,
        referenced_frame_numbers=frame if (frame and multi_frame) else None,
        relationship_type=relationship,
    )


def _library_entry(source: Dataset, image: ImageResult) -> hd.sr.ImageContentItem:
    """TID 4020: the image with what a workstation needs to hang it and draw marks on it at
    the right scale, each row present where the image has the attribute it comes from."""
    entry = _image_reference(source, image.frame, R.CONTAINS)
    context: list[hd.sr.ContentItem] = []
    stated = str(source.get("ImageLaterality", "") or "")
    side = stated or image.laterality or ("B" if shows_both_breasts(source) else None)
    if side in LATERALITY:
        context.append(
            hd.sr.CodeContentItem(
                IMAGE_LATERALITY, LATERALITY[side], relationship_type=R.HAS_ACQ_CONTEXT
            )
        )
    view = _view(source, image)
    if view is not None:
        context.append(view)
    acquisition = R.HAS_ACQ_CONTEXT
    orientation = [str(v) for v in source.get("PatientOrientation", []) or []]
    if len(orientation) == 2:
        context.append(
            hd.sr.TextContentItem(ORIENTATION_ROW, orientation[0], relationship_type=acquisition)
        )
        context.append(
            hd.sr.TextContentItem(ORIENTATION_COLUMN, orientation[1], relationship_type=acquisition)
        )
    for keyword, name, kind in DATES_AND_TIMES:
        if source.get(keyword):
            context.append(kind(name, source[keyword].value, relationship_type=acquisition))
    spacing = _spacing(source)
    if spacing is not None:
        row, column = spacing
        context.append(
            hd.sr.NumContentItem(
                HORIZONTAL_SPACING, column, MILLIMETRE, relationship_type=acquisition
            )
        )
        context.append(
            hd.sr.NumContentItem(VERTICAL_SPACING, row, MILLIMETRE, relationship_type=acquisition)
        )
    if context:
        entry.ContentSequence = hd.sr.ContentSequence(context)
    return entry


DATES_AND_TIMES = (
    ("StudyDate", STUDY_DATE, hd.sr.DateContentItem),
    ("StudyTime", STUDY_TIME, hd.sr.TimeContentItem),
    ("ContentDate", CONTENT_DATE, hd.sr.DateContentItem),
    ("ContentTime", CONTENT_TIME, hd.sr.TimeContentItem),
)


def _view(source: Dataset, image: ImageResult) -> hd.sr.CodeContentItem | None:
    """Image View as the image codes it (CID 4014), its modifiers (CID 4015) nested as
    HAS CONCEPT MOD; the view the result names where the image has no code."""
    coded = source.get("ViewCodeSequence")
    if coded:
        view = coded[0]
        value = _code(view.CodeValue, view.CodingSchemeDesignator, view.CodeMeaning)
        modifiers = list(view.get("ViewModifierCodeSequence", []))
        modifiers += list(source.get("ViewModifierCodeSequence", []))  # breast view form
    elif image.view in VIEWS:
        value, modifiers = VIEWS[image.view], []
    else:
        return None
    item = hd.sr.CodeContentItem(IMAGE_VIEW, value, relationship_type=R.HAS_ACQ_CONTEXT)
    if modifiers:
        item.ContentSequence = hd.sr.ContentSequence(
            [
                hd.sr.CodeContentItem(
                    IMAGE_VIEW_MODIFIER,
                    _code(m.CodeValue, m.CodingSchemeDesignator, m.CodeMeaning),
                    relationship_type=R.HAS_CONCEPT_MOD,
                )
                for m in modifiers
            ]
        )
    return item


def _spacing(source: Dataset) -> tuple[float, float] | None:
    """(row, column) spacing in mm: Imager Pixel Spacing, which marks are placed in on a
    projection image, else Pixel Spacing, else the frames' Pixel Measures."""
    for keyword in ("ImagerPixelSpacing", "PixelSpacing"):
        if source.get(keyword):
            row, column = source[keyword].value
            return float(row), float(column)
    for groups in source.get("SharedFunctionalGroupsSequence", []):
        for measures in groups.get("PixelMeasuresSequence", []):
            if measures.get("PixelSpacing"):
                row, column = measures.PixelSpacing
                return float(row), float(column)
    return None


def _scoord(
    name: hd.sr.CodedConcept, finding: Finding, center_only: bool, source: Dataset
) -> hd.sr.ScoordContentItem:
    if center_only:
        center = finding.region.center
        graphic_type = hd.sr.GraphicTypeValues.POINT
        data = np.array([[center.column, center.row]], dtype=np.float32)
    else:
        graphic_type = (
            hd.sr.GraphicTypeValues.ELLIPSE
            if finding.region.shape is Shape.ELLIPSE
            else hd.sr.GraphicTypeValues.POLYLINE
        )
        data = graphic_data(finding)
    item = hd.sr.ScoordContentItem(
        name=name, graphic_type=graphic_type, graphic_data=data, relationship_type=R.HAS_PROPERTIES
    )
    item.ContentSequence = hd.sr.ContentSequence(
        [_image_reference(source, finding.frame, R.SELECTED_FROM)]
    )
    return item


def _intent(score: float, threshold: float) -> hd.sr.CodeContentItem:
    value = PRESENTATION_REQUIRED if score >= threshold else PRESENTATION_OPTIONAL
    return hd.sr.CodeContentItem(RENDERING_INTENT, value, relationship_type=R.HAS_CONCEPT_MOD)


def _finding_items(
    finding: Finding,
    source: Dataset,
    result: StudyResult,
) -> hd.sr.ContainerContentItem:
    threshold = result.model.operating_threshold
    properties: list[hd.sr.ContentItem] = [
        _intent(finding.score, threshold),
        *_algorithm(result),
        hd.sr.NumContentItem(
            CERTAINTY, round(finding.score * 100, 2), PERCENT, relationship_type=R.HAS_PROPERTIES
        ),
        _scoord(CENTER, finding, True, source),
    ]
    if finding.region.shape is not Shape.POINT:
        properties.append(_scoord(OUTLINE, finding, False, source))
    single = hd.sr.CodeContentItem(
        SINGLE_IMAGE_FINDING,
        CAD_FINDING_TYPES.get(finding.kind, GENERIC_FINDING),
        relationship_type=R.CONTAINS,
    )
    single.ContentSequence = hd.sr.ContentSequence(properties)
    impression = hd.sr.ContainerContentItem(IMPRESSION, relationship_type=R.INFERRED_FROM)
    impression.ContentSequence = hd.sr.ContentSequence([_intent(finding.score, threshold), single])
    return impression


def _detections(result: StudyResult) -> hd.sr.CodeContentItem:
    """Summary of Detections with its TID 4015: the finding types the model looks for (the
    types it tells apart, else those of its findings, else the generic Finding)."""
    found = [f.kind for image in result.images for f in image.findings]
    kinds = result.model.finding_kinds or tuple(dict.fromkeys(found))
    looked_for = {CAD_FINDING_TYPES.get(kind, GENERIC_FINDING) for kind in kinds}
    detected = []
    for finding_type in sorted(looked_for, key=lambda c: c.value) or [GENERIC_FINDING]:
        item = hd.sr.CodeContentItem(
            DETECTION_PERFORMED, finding_type, relationship_type=R.CONTAINS
        )
        item.ContentSequence = hd.sr.ContentSequence(_algorithm(result))
        detected.append(item)
    successful = hd.sr.ContainerContentItem(
        SUCCESSFUL_DETECTIONS, relationship_type=R.INFERRED_FROM
    )
    successful.ContentSequence = hd.sr.ContentSequence(detected)
    summary = hd.sr.CodeContentItem(SUMMARY_OF_DETECTIONS, SUCCEEDED, relationship_type=R.CONTAINS)
    summary.ContentSequence = hd.sr.ContentSequence([successful])
    return summary


def _algorithm(result: StudyResult) -> list[hd.sr.ContentItem]:
    """TID 4019, as HAS PROPERTIES of the item that includes it."""
    return [
        hd.sr.TextContentItem(
            ALGORITHM_NAME, result.model.name, relationship_type=R.HAS_PROPERTIES
        ),
        hd.sr.TextContentItem(
            ALGORITHM_VERSION, result.model.version, relationship_type=R.HAS_PROPERTIES
        ),
    ]


def _observer(result: StudyResult, context: ResultContext) -> list[hd.sr.ContentItem]:
    model = result.model
    return [
        hd.sr.CodeContentItem(OBSERVER_TYPE, DEVICE, relationship_type=R.HAS_OBS_CONTEXT),
        hd.sr.UIDRefContentItem(
            DEVICE_UID, context.device_uid, relationship_type=R.HAS_OBS_CONTEXT
        ),
        hd.sr.TextContentItem(DEVICE_NAME, model.name, relationship_type=R.HAS_OBS_CONTEXT),
        hd.sr.TextContentItem(
            DEVICE_MANUFACTURER, model.manufacturer, relationship_type=R.HAS_OBS_CONTEXT
        ),
        hd.sr.TextContentItem(DEVICE_MODEL, model.version, relationship_type=R.HAS_OBS_CONTEXT),
    ]


def cad_report(
    sources: Mapping[str, Dataset],
    result: StudyResult,
    context: ResultContext,
    series_instance_uid: str,
    previous_reports: list[Dataset] | None = None,
) -> hd.sr.ComprehensiveSR:
    library = hd.sr.ContainerContentItem(IMAGE_LIBRARY, relationship_type=R.CONTAINS)
    library.ContentSequence = hd.sr.ContentSequence(
        [_library_entry(sources[i.sop_instance_uid], i) for i in result.images]
    )
    impressions = [
        _finding_items(finding, sources[image.sop_instance_uid], result)
        for image in result.images
        for finding in image.findings
    ]
    summary = hd.sr.CodeContentItem(
        FINDINGS_SUMMARY,
        WITH_FINDINGS if impressions else WITHOUT_FINDINGS,
        relationship_type=R.CONTAINS,
    )
    if impressions:
        summary.ContentSequence = hd.sr.ContentSequence(impressions)
    root = hd.sr.ContainerContentItem(CAD_REPORT, is_content_continuous=False, template_id="4000")
    root.ContentSequence = hd.sr.ContentSequence(
        [
            *hd.sr.LanguageOfContentItemAndDescendants(ENGLISH),
            *_observer(result, context),
            library,
            summary,
            _detections(result),
            hd.sr.CodeContentItem(SUMMARY_OF_ANALYSES, NOT_ATTEMPTED, relationship_type=R.CONTAINS),
        ]
    )
    sr = hd.sr.ComprehensiveSR(
        content=root,
        **sr_arguments(
            sources.values(), result.model, context, series_instance_uid, 1, previous_reports
        ),
    )
    sr.SOPClassUID = MammographyCADSRStorage
    sr.file_meta.MediaStorageSOPClassUID = MammographyCADSRStorage
    label_like_sources(sr, result.model, "CAD", next(iter(sources.values())))
    return sr
