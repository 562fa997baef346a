"""Grayscale Softcopy Presentation State: the findings as graphic annotations on the source
images, for workstations that show presentation states (optional, ``[results] gsps``)."""

from __future__ import annotations

from collections.abc import Mapping

import highdicom as hd
from pydicom.dataset import Dataset

from models.serving import Finding, ImageResult, Shape, StudyResult
from node.results.provenance import (
    ResultContext,
    SeriesPerSide,
    contributing_equipment,
    graphic_data,
    label_like_sources,
    series_description,
)

LAYER = "AI FINDINGS"
PRESENTATION_SERIES = (3, 6, 7)  # series number offsets of the right, left and neither states


def _graphic(finding: Finding) -> hd.pr.GraphicObject:
    kinds = {
        Shape.POINT: hd.pr.GraphicTypeValues.POINT,
        Shape.ELLIPSE: hd.pr.GraphicTypeValues.ELLIPSE,
        Shape.POLYGON: hd.pr.GraphicTypeValues.POLYLINE,
    }
    return hd.pr.GraphicObject(
        kinds[finding.region.shape], graphic_data(finding), units=hd.pr.AnnotationUnitsValues.PIXEL
    )


def _label(finding: Finding) -> hd.pr.TextObject:
    center = finding.region.center
    return hd.pr.TextObject(
        f"{finding.kind} {finding.score:.2f}",
        units=hd.pr.AnnotationUnitsValues.PIXEL,
        anchor_point=(center.column, center.row),
        anchor_point_visible=True,
    )


def _annotation(
    source: Dataset,
    image: ImageResult,
    layer: hd.pr.GraphicLayer,
) -> hd.pr.GraphicAnnotation | None:
    if not image.findings:
        return None
    multi_frame = int(source.get("NumberOfFrames", 1) or 1) > 1
    frames = sorted({f.frame or image.frame or 1 for f in image.findings}) if multi_frame else None
    return hd.pr.GraphicAnnotation(
        referenced_images=[source],
        graphic_layer=layer,
        referenced_frame_number=frames,
        graphic_objects=[_graphic(f) for f in image.findings],
        text_objects=[_label(f) for f in image.findings],
    )


def presentation_states(
    sources: Mapping[str, Dataset],
    result: StudyResult,
    context: ResultContext,
    series: SeriesPerSide | None = None,
) -> list[hd.pr.GrayscaleSoftcopyPresentationState]:
    """One presentation state per breast (so its series Laterality has a value), or one per
    image for multi-frame objects (tomosynthesis): a GSPS applies one Modality LUT to all it
    references. Each breast's states go in that breast's series (``series``), as the
    overlays do."""
    series = series or SeriesPerSide(context, PRESENTATION_SERIES)
    images = list(result.images)
    if any(int(sources[i.sop_instance_uid].get("NumberOfFrames", 1) or 1) > 1 for i in images):
        groups = [[image] for image in images]
    else:
        sides: dict[str | None, list[ImageResult]] = {}
        for image in images:
            sides.setdefault(image.laterality, []).append(image)
        groups = list(sides.values())
    return [
        _presentation_state(sources, group, result, context, series, number)
        for number, group in enumerate(groups, start=1)
    ]


def _presentation_state(
    sources: Mapping[str, Dataset],
    images: list[ImageResult],
    result: StudyResult,
    context: ResultContext,
    series: SeriesPerSide,
    instance_number: int,
) -> hd.pr.GrayscaleSoftcopyPresentationState:
    model = result.model
    sides = {image.laterality for image in images}
    side = sides.pop() if len(sides) == 1 else None
    series_instance_uid, series_number = series(side)
    layer = hd.pr.GraphicLayer(LAYER, order=1, description=f"{model.name} {model.version}")
    annotations = [
        a for image in images if (a := _annotation(sources[image.sop_instance_uid], image, layer))
    ]
    analysed = [sources[i.sop_instance_uid] for i in images]
    gsps = hd.pr.GrayscaleSoftcopyPresentationState(
        referenced_images=analysed,
        series_instance_uid=series_instance_uid,
        series_number=series_number,
        sop_instance_uid=context.new_uid(),
        instance_number=instance_number,
        manufacturer=model.manufacturer,
        manufacturer_model_name=model.name,
        software_versions=model.version,
        device_serial_number=context.device_uid[-16:],
        content_label="AI_FINDINGS",
        content_description=series_description(model, "FINDINGS"),
        graphic_annotations=annotations or None,
        graphic_layers=[layer],
        contributing_equipment=[contributing_equipment(model, context.device_uid)],
    )
    label_like_sources(gsps, model, "FINDINGS", analysed[0])
    # General Series Laterality (type 2C for paired body parts): one side, or left empty.
    gsps.Laterality = side or ""
    return gsps
