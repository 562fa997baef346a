"""Every result object for one analysis version, in the order they are sent.

Mammography and tomosynthesis studies get the TID 1500 report, the Mammography CAD SR,
one heatmap overlay per analysed image and, when configured, presentation states; MRI
studies get the report and the overlays (CAD SR is a mammography object). Overlays and
presentation states go in one series per breast: General Series Laterality is a series
attribute, so a series holding both breasts' images would contradict itself; overlays go in
one series per breast and view, so that hanging protocols can place each beside its source.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydicom.dataset import Dataset
from pydicom.uid import Comprehensive3DSRStorage, MammographyCADSRStorage

from models.serving import StudyResult
from node.config import ResultsSettings
from node.results.cad_sr import cad_report
from node.results.gsps import PRESENTATION_SERIES, presentation_states
from node.results.provenance import ResultContext, SeriesPerSide, SeriesPerView, device_uid_for
from node.results.sc import heatmap_overlay
from node.results.source_values import empty_what_results_cannot_carry
from node.results.sr import measurement_report

MAMMOGRAPHY_MODALITIES = {"MG"}


def result_context(settings: ResultsSettings, ae_title: str, version: int) -> ResultContext:
    return ResultContext(settings.uid_root, device_uid_for(ae_title, settings.device_uid), version)


def build_result_objects(
    sources: Mapping[str, Dataset],
    result: StudyResult,
    settings: ResultsSettings,
    ae_title: str,
    version: int,
    previous: Sequence[Dataset] = (),
) -> list[Dataset]:
    """``previous``: the earlier versions' SRs, which the new ones name as predecessors.
    Patient and study values of the sources the objects cannot carry are emptied first, in
    the sources themselves (``node.results.source_values``)."""
    empty_what_results_cannot_carry(sources.values())
    context = result_context(settings, ae_title, version)
    analysed = {i.sop_instance_uid: sources[i.sop_instance_uid] for i in result.images}
    objects: list[Dataset] = [
        measurement_report(
            analysed,
            result,
            context,
            context.new_uid(),
            [p for p in previous if p.SOPClassUID == Comprehensive3DSRStorage],
        ),
    ]
    modality = str(next(iter(analysed.values())).get("Modality", ""))
    if modality in MAMMOGRAPHY_MODALITIES:
        objects.append(
            cad_report(
                analysed,
                result,
                context,
                context.new_uid(),
                [p for p in previous if p.SOPClassUID == MammographyCADSRStorage],
            )
        )
    scores = {b.laterality: b.score for b in result.breasts}
    compositions = {b.laterality: b.composition for b in result.breasts}
    overlays = SeriesPerView(context)
    for number, image in enumerate(result.images, start=1):
        score = scores.get(image.laterality or "", result.overall_score)
        series_uid, series_number = overlays(image.laterality, image.view)
        objects.append(
            heatmap_overlay(
                analysed[image.sop_instance_uid],
                image,
                score,
                result.model,
                context,
                series_uid,
                number,
                series_number,
                compositions.get(image.laterality or ""),
            )
        )
    if settings.gsps:
        states = SeriesPerSide(context, PRESENTATION_SERIES)
        objects.extend(presentation_states(analysed, result, context, states))
    return objects
