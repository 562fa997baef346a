"""The demo MRI checkpoint genuinely finds synthetic enhancing lesions: fresh DCE phantom
studies (another seed than training) written as three MR series by ``sample-study --mri``,
read back through the node's own sources (series chosen by the DCE rules, volumes read by
SimpleITK, subtraction MIP) and analysed as the pipeline does. Figures printed; bars
asserted."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pytest

from models.serving.checkpoint import read_verified
from models.serving.inference import Predictor
from models.serving.sources import study_sources
from models.serving.study import analyse_images
from models.synthetic.demo_mri import projection
from models.synthetic.mri_phantoms import dce_phantom
from models.synthetic.sample_mri import FIELD_OF_VIEW_MM, SLICE_THICKNESS_MM, write_sample_mri_study

SIDES = ("L", "R", None) * 4  # 8 studies with a lesion, 4 without
SIZE, SLICES = (128, 128), 16


def test_the_projection_of_a_phantom_peaks_at_its_lesion() -> None:
    for seed, side in enumerate(("L", "R")):
        phantom = dce_phantom(np.random.default_rng(seed), side)
        assert phantom.lesion is not None and phantom.lesion.side == side
        image = projection(phantom)
        row, column = np.unravel_index(np.argmax(image), image.shape)
        centre = phantom.lesion.center
        assert abs(column - centre.column) <= 3 and abs(row - centre.row) <= 3
        # the patient's right is on the low columns
        assert (centre.column < image.shape[1] / 2) == (side == "R")
    assert dce_phantom(np.random.default_rng(0), None).lesion is None


@pytest.mark.timeout(900)
def test_demo_mri_model_ranks_and_locates_enhancing_lesions(
    demo_mri_weights: Path, tmp_path: Path
) -> None:
    manifest = read_verified(demo_mri_weights)
    assert manifest.validated_for_clinical_use is False
    assert manifest.training_data.startswith("DEMO ONLY")
    engine = Predictor(demo_mri_weights, device="cpu")
    ranked, quiet, distances = 0, 0, []
    spacing = FIELD_OF_VIEW_MM / SIZE[1]
    for number, side in enumerate(SIDES):
        seed = 5000 + number  # training draws from DemoTraining.seed
        paths = write_sample_mri_study(tmp_path / f"s{number}", side, SIZE, SLICES, seed)
        sources = study_sources(paths)
        assert sources.kind == "mri" and len(sources.images) == 1
        result = analyse_images(engine, "1.2.3", sources.images, kind="enhancing lesion")
        assert result.model.validated_for_clinical_use is False
        scores = {b.laterality: b.score for b in result.breasts}
        if side is None:
            quiet += result.overall_score < manifest.operating_threshold
            continue
        ranked += scores[side] > scores["R" if side == "L" else "L"]
        lesion = dce_phantom(
            np.random.default_rng(seed), side, (SLICES, *SIZE), FIELD_OF_VIEW_MM, SLICE_THICKNESS_MM
        ).lesion
        assert lesion is not None
        findings = result.images[0].findings
        if findings:
            centre = max(findings, key=lambda f: f.score).region.center
            distances.append(
                spacing
                * float(
                    np.hypot(centre.column - lesion.center.column, centre.row - lesion.center.row)
                )
            )
        else:
            distances.append(float("inf"))
    with_lesion = sum(side is not None for side in SIDES)
    print(
        f"demo MRI: lesion breast scored higher in {ranked}/{with_lesion}; top finding "
        f"median {statistics.median(distances):.1f} mm, worst {max(distances):.1f} mm from "
        f"the lesion; {quiet}/{len(SIDES) - with_lesion} lesion-free studies below threshold"
    )
    assert ranked == with_lesion
    assert all(d <= 10.0 for d in distances), distances
    assert quiet == len(SIDES) - with_lesion


@pytest.mark.timeout(900)
def test_mri_finding_is_on_its_lesion_slice_and_names_its_breast(
    demo_mri_weights: Path, tmp_path: Path
) -> None:
    """Fresh studies (new seeds each run, printed), a lesion in either breast, the slices
    written with the row direction to the patient's left and, mirrored, to her right: the
    result references the post-contrast slice where the enhancement at the lesion peaks
    (not the middle slice), and the finding names the lesion's breast, which only Image
    Orientation (Patient) and Image Position tell apart in the mirrored case."""
    engine = Predictor(demo_mri_weights, device="cpu")
    cases = (("R", True), ("L", True), ("R", False), ("L", False))
    draws = iter(int(s) for s in np.random.SeedSequence().generate_state(1000))
    slices, middle = 32, 16  # the sample's default depth; the node's old reference slice
    for side, to_left in cases:
        for seed in draws:  # a lesion at least 9 mm off the middle slice, so it tells
            phantom = dce_phantom(
                np.random.default_rng(seed),
                side,
                (slices, *SIZE),
                FIELD_OF_VIEW_MM,
                SLICE_THICKNESS_MM,
            )
            assert phantom.lesion is not None
            if abs(phantom.lesion.slice - middle) >= 3:
                break
        folder = tmp_path / f"{side}-{to_left}"
        paths = write_sample_mri_study(
            folder, side, SIZE, slices, seed, rows_to_patient_left=to_left
        )
        sources = study_sources(paths)
        result = analyse_images(engine, "1.2.3", sources.images, kind="enhancing lesion")
        [image] = result.images
        assert phantom.lesion is not None
        centre = phantom.lesion.center
        column = round(centre.column) if to_left else SIZE[1] - 1 - round(centre.column)
        # the lesion's enhancement per slice, over its inner disc: one pixel's is noise
        rows, columns = np.ogrid[: SIZE[0], : SIZE[1]]
        inner = (rows - centre.row) ** 2 + (columns - centre.column) ** 2 <= (
            phantom.lesion.radius_px / 2
        ) ** 2
        enhancement = (phantom.phases[1] - phantom.phases[0])[:, inner].mean(axis=1)
        referenced = sources.datasets[image.sop_instance_uid]
        assert referenced.SeriesDescription == "SYNTHETIC DCE T1 POST 1"
        index = int(referenced.InstanceNumber) - 1  # the sample numbers slices in volume order
        print(
            f"\nMRI seed {seed}, lesion {side}, rows to the patient's "
            f"{'left' if to_left else 'right'}: referenced slice {index + 1} "
            f"({abs(index - phantom.lesion.slice) * SLICE_THICKNESS_MM:.0f} mm from the lesion "
            f"centre), enhancement there {enhancement[index] / enhancement.max():.2f} of its "
            f"peak (middle slice: {enhancement[middle] / enhancement.max():.2f}); findings "
            f"{[(f.laterality, round(f.score, 2)) for f in image.findings]}"
        )
        assert enhancement[index] >= 0.9 * enhancement.max(), seed
        assert image.laterality is None  # the projection shows both breasts
        assert image.findings, seed
        top = max(image.findings, key=lambda f: f.score)
        assert top.laterality == side, seed
        scores = {b.laterality: b.score for b in result.breasts}
        assert scores[side] > scores["L" if side == "R" else "R"], seed
        assert top.frame is None  # classic MR: the slice is the referenced instance
        found = top.region.center
        assert abs(found.column - column) * phantom.pixel_spacing_mm <= 10.0, seed
