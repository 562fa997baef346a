"""Secondary Capture heatmap overlays for MG, tomosynthesis and MR results."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from node.results.common import NOT_FOR_CLINICAL_USE, ResultContext, device_uid_for
from node.results.sc import heatmap_overlay
from tests.dicom_checks import validated
from tests.results_fixtures import (
    Case,
    artifact_dir,
    mammography_case,
    mr_case,
    tomosynthesis_case,
)

CONTEXT = ResultContext("1.2.826.0.1.3680043.10.1078.", device_uid_for("BREASTNODE"), 1)


@pytest.mark.parametrize(
    "make", [mammography_case, tomosynthesis_case, mr_case], ids=["mg", "tomosynthesis", "mr"]
)
def test_overlays_validate_and_show_the_heat_at_the_finding(make: object, tmp_path: Path) -> None:
    case: Case = make()  # type: ignore[operator]
    series = CONTEXT.new_uid()
    by_uid = {str(ds.SOPInstanceUID): ds for ds in case.sources}
    for number, image in enumerate(case.result.images, start=1):
        source = by_uid[image.sop_instance_uid]
        sc = heatmap_overlay(source, image, 0.8, case.result.model, CONTEXT, series, number)
        back = validated(sc, tmp_path / f"sc-{number}.dcm", f"{case.name} SC {number}")
        assert back.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
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
    from models.inference import Engine
    from models.sources import study_sources
    from models.study import analyse_images
    from node.sample_study import write_sample_study

    paths = write_sample_study(tmp_path / "study", "L", (512, 416))
    sources = study_sources(paths)
    result = analyse_images(Engine(demo_weights, device="cpu"), "1.2.3", sources.images)
    series = CONTEXT.new_uid()
    for number, image in enumerate(result.images, start=1):
        assert image.display_grey is not None and image.display_grey.shape == (512, 416)
        source = sources.datasets[image.sop_instance_uid]
        kept = heatmap_overlay(source, image, 0.5, result.model, CONTEXT, series, number)
        again = replace(image, display_grey=None)
        decoded = heatmap_overlay(source, again, 0.5, result.model, CONTEXT, series, number)
        assert np.array_equal(kept.pixel_array, decoded.pixel_array)
