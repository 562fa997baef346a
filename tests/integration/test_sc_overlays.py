"""Secondary Capture heatmap overlays for MG, tomosynthesis and MR results."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.uid import GrayscaleSoftcopyPresentationStateStorage, SecondaryCaptureImageStorage

from models.serving.result import Finding, ImageResult, Point, Region
from models.synthetic import mammogram, write
from node.config import ResultsSettings
from node.results.build import build_result_objects
from node.results.provenance import NOT_FOR_CLINICAL_USE, ResultContext, device_uid_for
from node.results.sc import heatmap_overlay
from tests.support.results import (
    DEMO_MODEL,
    Case,
    artifact_dir,
    mammography_case,
    mr_case,
    tomosynthesis_case,
    with_view_modifier,
)
from tests.support.validators import dcentvfy, validated

CONTEXT = ResultContext("1.2.826.0.1.3680043.10.1078.", device_uid_for("BREASTNODE"), 1)
# standard attributes the overlays carry beyond the SC IOD, so hanging protocols place them
OVERLAY_EXTENSIONS = (
    "ImagerPixelSpacing",
    "ViewModifierCodeSequence",  # and the code of its item:
    "CodeValue",
    "CodingSchemeDesignator",
    "CodeMeaning",
)
# the image corners viewers write their own text in: a quarter of the width, 15% of the height
CORNER_WIDTH, CORNER_HEIGHT = 0.25, 0.15


def assert_placed_like(overlay: Dataset, source: Dataset) -> None:
    """What a hanging protocol places an image by, as the source states it."""
    assert overlay.Modality == source.Modality
    if "StudyDescription" in source:
        assert overlay.StudyDescription == source.StudyDescription
    side = source.get("ImageLaterality")
    if side:
        assert overlay.ImageLaterality == side
        assert "Laterality" not in overlay  # General Series Laterality: 2C, not with it
    if "PatientOrientation" in source:
        assert overlay.PatientOrientation == source.PatientOrientation
    for keyword in ("ImagerPixelSpacing", "PixelSpacing"):
        if keyword in source:
            assert overlay[keyword].value == source[keyword].value, keyword
    if "ViewCodeSequence" in source:
        [view], [copied] = source.ViewCodeSequence, overlay.ViewCodeSequence
        assert (copied.CodeValue, copied.CodingSchemeDesignator, copied.CodeMeaning) == (
            view.CodeValue,
            view.CodingSchemeDesignator,
            view.CodeMeaning,
        )
        modifiers = view.get("ViewModifierCodeSequence", [])
        assert [m.CodeValue for m in overlay.get("ViewModifierCodeSequence", [])] == [
            m.CodeValue for m in modifiers
        ]
    if "SharedFunctionalGroupsSequence" in source:
        measures = source.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
        assert overlay.PixelSpacing == measures.PixelSpacing


@pytest.mark.parametrize(
    "make", [mammography_case, tomosynthesis_case, mr_case], ids=["mg", "tomosynthesis", "mr"]
)
def test_overlays_validate_and_show_the_heat_at_the_finding(make: object, tmp_path: Path) -> None:
    case: Case = make()  # type: ignore[operator]
    if case.name == "mg":
        with_view_modifier(case)
    series = CONTEXT.new_uid()
    by_uid = {str(ds.SOPInstanceUID): ds for ds in case.sources}
    for number, image in enumerate(case.result.images, start=1):
        source = by_uid[image.sop_instance_uid]
        sc = heatmap_overlay(source, image, 0.8, case.result.model, CONTEXT, series, number)
        label = f"{case.name} SC {number}"
        back = validated(sc, tmp_path / f"sc-{number}.dcm", label, OVERLAY_EXTENSIONS)
        assert back.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
        assert_placed_like(back, source)
        assert back.SOPInstanceUID.startswith(CONTEXT.uid_root)
        assert back.StudyInstanceUID == source.StudyInstanceUID
        assert back.PatientID == source.PatientID
        assert back.SeriesDescription.startswith(NOT_FOR_CLINICAL_USE)
        assert back.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
        [equipment] = [
            e
            for e in back.ContributingEquipmentSequence
            if e.get("DeviceUID") == CONTEXT.device_uid
        ]
        assert equipment.ManufacturerModelName == case.result.model.name
        assert equipment.DeviceUID == CONTEXT.device_uid
        if image.frame:
            assert back.SourceImageSequence[0].ReferencedFrameNumber == image.frame

        rgb = back.pixel_array
        assert rgb.shape == (*image.heatmap.shape, 3)
        if image.findings:
            center = image.findings[0].region.center
            r, g, b = (int(v) for v in rgb[round(center.row), round(center.column)])
            assert r > 120 and r > g + 60 and r > b + 60, (r, g, b)  # red heat, not grey
        cold = np.unravel_index(np.argmin(image.heatmap), image.heatmap.shape)
        r, g, b = (int(v) for v in rgb[cold])
        assert abs(r - g) < 20 and abs(g - b) < 20  # grey where there is no heat
        if number == 1:
            Image.fromarray(rgb).save(artifact_dir() / f"sc-overlay-{case.name}.png")


def test_an_overlay_from_the_image_the_model_read_equals_one_from_the_pixels(
    demo_weights: Path, tmp_path: Path
) -> None:
    """2D mammography results keep the image as the model read it (8-bit), so the overlay
    does not window the source again; the pixels come out the same."""
    from models.serving.inference import Predictor
    from models.serving.sources import study_sources
    from models.serving.study import analyse_images
    from models.synthetic.samples import write_sample_study

    paths = write_sample_study(tmp_path / "study", "L", (512, 416))
    sources = study_sources(paths)
    result = analyse_images(Predictor(demo_weights, device="cpu"), "1.2.3", sources.images)
    series = CONTEXT.new_uid()
    for number, image in enumerate(result.images, start=1):
        assert image.display_grey is not None and image.display_grey.shape == (512, 416)
        source = sources.datasets[image.sop_instance_uid]
        kept = heatmap_overlay(source, image, 0.5, result.model, CONTEXT, series, number)
        again = replace(image, display_grey=None)
        decoded = heatmap_overlay(source, again, 0.5, result.model, CONTEXT, series, number)
        assert np.array_equal(kept.pixel_array, decoded.pixel_array)


def test_a_four_view_study_hangs_by_breast_and_passes_both_validators(tmp_path: Path) -> None:
    """Every object of the result set passes dciodvfy, and the set with its sources passes
    dcentvfy (which found overlays of both breasts in one series with Laterality R on two
    and L on two); the overlays go in one series per breast and view (hanging protocols place
    series), the presentation states in one series per breast."""
    case = with_view_modifier(mammography_case())
    sources = {str(ds.SOPInstanceUID): ds for ds in case.sources}
    objects = build_result_objects(sources, case.result, ResultsSettings(gsps=True), "BN", 1)
    paths = [write(ds, tmp_path / "sources") for ds in case.sources]
    by_series: dict[str, set[str]] = {}
    views: dict[str, set[str]] = {}
    for number, ds in enumerate(objects):
        path = tmp_path / f"result-{number}.dcm"
        back = validated(ds, path, f"object {number}", OVERLAY_EXTENSIONS)
        paths.append(path)
        if back.SOPClassUID == SecondaryCaptureImageStorage:
            [source] = [sources[r.ReferencedSOPInstanceUID] for r in back.SourceImageSequence]
            assert_placed_like(back, source)
            by_series.setdefault(back.SeriesInstanceUID, set()).add(back.ImageLaterality)
            view = f"{back.ImageLaterality} {source.ViewPosition}"
            views.setdefault(back.SeriesInstanceUID, set()).add(view)
            assert view in back.SeriesDescription
        if back.SOPClassUID == GrayscaleSoftcopyPresentationStateStorage:
            by_series.setdefault(back.SeriesInstanceUID, set()).add(back.Laterality)
    assert dcentvfy(paths) == []
    # four overlay series, one per breast and view; two presentation state series
    assert sorted(sorted(sides) for sides in by_series.values()) == [["L"]] * 3 + [["R"]] * 3
    assert sorted(sorted(v) for v in views.values()) == [["L CC"], ["L MLO"], ["R CC"], ["R MLO"]]
    numbers = {ds.SeriesInstanceUID: ds.SeriesNumber for ds in objects}
    assert len(set(numbers.values())) == len(numbers)  # each series its own number


@pytest.mark.parametrize("size", [(3328, 2560), (1024, 832)], ids=["3328x2560", "1024x832"])
@pytest.mark.parametrize("laterality", ["R", "L"])
def test_labels_stay_clear_of_the_corners_viewers_write_in(
    size: tuple[int, int], laterality: str
) -> None:
    """On a uniform grey image with no heat and no mark, every pixel the overlay changes
    belongs to its burned-in label: none lies in the four corner regions, the label sits on
    the side away from the chest wall, and its letters grow with the image."""
    rows, columns = size
    source = mammogram(laterality=laterality, view="MLO", rows=rows, columns=columns)
    grey = np.full(size, 128, dtype=np.uint8)
    image = ImageResult(
        source.SOPInstanceUID,
        np.zeros(size, np.float32),
        (),
        laterality,
        "MLO",
        display_grey=grey,
    )
    sc = heatmap_overlay(source, image, 0.42, DEMO_MODEL, CONTEXT, CONTEXT.new_uid(), 1)
    rgb = np.asarray(sc.pixel_array)
    label = (rgb != 128).any(axis=2)
    assert label.sum() > 0.001 * rows * columns, "no label drawn"
    height, width = math.ceil(rows * CORNER_HEIGHT), math.ceil(columns * CORNER_WIDTH)
    for top in (slice(0, height), slice(rows - height, rows)):
        for side in (slice(0, width), slice(columns - width, columns)):
            assert not label[top, side].any(), (top, side)
    label_rows = np.flatnonzero(label.any(axis=1))
    label_columns = np.flatnonzero(label.any(axis=0))
    nipple_side = "right" if laterality == "L" else "left"  # A\FR left, P\FL right views
    middle = columns / 2
    on_right = label_columns.min() > middle
    assert on_right == (nipple_side == "right"), (label_columns.min(), label_columns.max())
    # four lines at a fortieth of the height each, spaced by 1.3
    assert label_rows.max() - label_rows.min() > 3.5 * rows / 40
    Image.fromarray(rgb).resize((columns // 4, rows // 4)).save(
        artifact_dir() / f"sc-label-{laterality}-{rows}x{columns}.png"
    )


def test_an_mri_projection_shows_the_findings_of_every_slice() -> None:
    """The MRI overlay shows the projection of all slices, so a finding on another slice
    than the one the image result references is drawn too (a tomosynthesis frame shows
    only its own)."""
    case = mr_case()
    [image] = case.result.images
    elsewhere = Finding("enhancing lesion", 0.4, Region.ellipse(Point(40, 40), 8, 6))
    here = replace(image.findings[0], frame=2)
    moved = replace(image, frame=2, findings=(here, replace(elsewhere, frame=4)))
    source = case.sources[0]
    drawn = heatmap_overlay(source, moved, 0.64, case.result.model, CONTEXT, "2.25.1", 1)
    without = heatmap_overlay(
        source, replace(moved, findings=(here,)), 0.64, case.result.model, CONTEXT, "2.25.1", 1
    )
    changed = np.any(drawn.pixel_array != without.pixel_array, axis=2)
    rows, columns = np.nonzero(changed)
    assert rows.size, "the finding on slice 4 was not drawn"
    # every changed pixel is the outline around (40, 40): 8 x 6 ellipse, a pixel of stroke
    assert np.hypot(columns - 40, rows - 40).max() <= 8 + 2
