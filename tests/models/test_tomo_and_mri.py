"""Tomosynthesis and breast MRI through the sources, the engine and the result objects.

Tomosynthesis: a lesion present only in frames 7-9 of 15 is found by the demo model in the
slab over those frames, and the finding, the overlay and the CAD SR name frame 8. MRI: a DCE
exam (pre, first post, a later post, and a T2 series) becomes one subtraction projection on
the first post series' slice of greatest enhancement, run through a small untrained MRI
checkpoint (this checks the path and the geometry, not accuracy)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.sequence import Sequence

from models.serving.inference import Predictor
from models.serving.sources import SourceOptions, study_sources
from models.serving.study import analyse_images
from models.synthetic import (
    BREAST_TOMOSYNTHESIS,
    SyntheticPatient,
    mammogram,
    mr_series,
    write,
)
from models.synthetic.phantoms import phantom_view, to_stored_values
from node.config import ResultsSettings
from node.results.build import build_result_objects
from tests.support.checkpoints import untrained_checkpoint
from tests.support.results import shared_groups

LESION_FRAMES = (7, 8, 9)


def tomosynthesis_file(folder: Path) -> tuple[Path, tuple[float, float]]:
    """15 frames of a left CC phantom; the lesion only in LESION_FRAMES."""
    plain = phantom_view(np.random.default_rng(11), "L", "CC", with_lesion=False)
    lesioned = phantom_view(np.random.default_rng(11), "L", "CC", with_lesion=True)
    assert lesioned.lesion is not None
    noise = np.random.default_rng(12)
    frames = []
    for frame in range(1, 16):
        base = lesioned.image if frame in LESION_FRAMES else plain.image
        frames.append(np.clip(base + noise.normal(0, 0.01, base.shape), 0, 1))
    ds = mammogram(
        SyntheticPatient(),
        laterality="L",
        view="CC",
        rows=plain.image.shape[0],
        columns=plain.image.shape[1],
        sop_class=BREAST_TOMOSYNTHESIS,
    )
    ds.NumberOfFrames = len(frames)
    ds.PixelData = to_stored_values(np.stack(frames), bits=14).tobytes()
    ds.SharedFunctionalGroupsSequence = Sequence([shared_groups()])
    ds.PerFrameFunctionalGroupsSequence = Sequence([type(ds)() for _ in frames])
    centre = lesioned.lesion.center
    return write(ds, folder), (centre.column, centre.row)


def test_tomosynthesis_finding_is_on_the_lesion_slab(demo_weights: Path, tmp_path: Path) -> None:
    path, (column, row) = tomosynthesis_file(tmp_path)
    sources = study_sources([path], SourceOptions(slab_frames=3))
    assert [i.frame for i in sources.images] == [2, 5, 8, 11, 14]  # slab centres
    engine = Predictor(demo_weights, device="cpu")
    result = analyse_images(engine, "1.2.3", sources.images)
    [image] = result.images
    assert image.frame == 8
    assert image.findings, "no finding on the lesion slab"
    top = max(image.findings, key=lambda f: f.score)
    assert top.frame == 8
    distance_mm = 0.4 * math.hypot(top.region.center.column - column, top.region.center.row - row)
    print(f"\ntomosynthesis: finding on frame {top.frame}, {distance_mm:.1f} mm from the lesion")
    assert distance_mm <= 10.0

    source = dcmread(path)
    objects = build_result_objects(
        {image.sop_instance_uid: source}, result, ResultsSettings(), "BREASTNODE", 1
    )
    [overlay] = [o for o in objects if o.Modality == "OT" or "HEATMAP" in o.SeriesDescription]
    assert overlay.SourceImageSequence[0].ReferencedFrameNumber == 8


def write_mr_series(
    folder: Path,
    patient: SyntheticPatient,
    study: str,
    description: str,
    time: str,
    enhancement: float,
) -> list[Path]:
    """Eight 64 x 64 slices; the lesion on slices 4-5, at the patient's right (low columns)."""
    return mr_series(
        folder,
        patient,
        study,
        description,
        size=64,
        slices=8,
        enhancement=enhancement,
        lesion_slices=(4, 5),
        lesion=(slice(40, 48), slice(12, 20)),
        acquisition_time=time,
        seed=3,
    )


def test_dce_mri_projection_through_an_mri_checkpoint(tmp_path: Path) -> None:
    patient = SyntheticPatient()
    study = "1.2.826.0.1.3680043.8.498.1"
    paths = (
        write_mr_series(tmp_path / "t2", patient, study, "SYN T2 TSE", "090000", 0)
        + write_mr_series(tmp_path / "pre", patient, study, "SYN DYN PRE", "090500", 0)
        + write_mr_series(tmp_path / "post1", patient, study, "SYN DYN POST 1", "090600", 900)
        + write_mr_series(tmp_path / "post2", patient, study, "SYN DYN POST 2", "090700", 1200)
    )
    sources = study_sources(paths)
    assert sources.kind == "mri"
    [image] = sources.images
    assert image.display_image is not None and image.display_image.shape == (64, 64)
    row, column = np.unravel_index(np.argmax(image.image), image.image.shape)
    assert 40 <= row < 48 and 12 <= column < 20  # the enhancement of the FIRST post phase
    reference = dcmread(
        next(p for p in paths if dcmread(p).SOPInstanceUID == image.sop_instance_uid)
    )
    assert reference.SeriesDescription == "SYN DYN POST 1"
    assert reference.InstanceNumber in (4, 5)  # a lesion slice, not the middle one
    assert set(sources.datasets) == {
        str(dcmread(p).SOPInstanceUID) for p in paths if "post1" in str(p.parent)
    }  # every slice of the projected series, for the slice the result names

    engine = Predictor(untrained_checkpoint(tmp_path / "model"), device="cpu")
    result = analyse_images(engine, study, sources.images, kind="enhancing lesion")
    [analysed] = result.images
    assert analysed.heatmap.shape == (64, 64)
    # axial, row direction to the patient's left: the lesion (low columns) is the right breast
    assert image.right_on_low_columns is True
    assert [b.laterality for b in result.breasts] == ["L", "R"]
    scores = {b.laterality: b.score for b in result.breasts}
    assert result.overall_score == pytest.approx(max(scores.values()), abs=1e-4)
    assert analysed.sop_instance_uid in sources.datasets
    objects = build_result_objects(
        {analysed.sop_instance_uid: sources.datasets[analysed.sop_instance_uid]},
        result,
        ResultsSettings(),
        "BREASTNODE",
        1,
    )
    classes = sorted(str(o.SOPClassUID) for o in objects)
    assert classes == ["1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.88.34"]


def test_mri_without_a_dce_pair_uses_the_fallback_series(tmp_path: Path) -> None:
    patient = SyntheticPatient()
    study = "1.2.826.0.1.3680043.8.498.2"
    paths = write_mr_series(tmp_path / "t1", patient, study, "SYN T1 AX", "090000", 700)
    paths += write_mr_series(tmp_path / "t2", patient, study, "SYN T2 TSE", "090100", 0)
    [image] = study_sources(paths).images
    chosen = dcmread(next(p for p in paths if dcmread(p).SOPInstanceUID == image.sop_instance_uid))
    assert chosen.SeriesDescription == "SYN T1 AX"


def test_a_study_without_breast_images_is_nothing_to_analyse(tmp_path: Path) -> None:
    from models.serving.sources import NothingToAnalyse
    from models.synthetic import other_modality

    with pytest.raises(NothingToAnalyse):
        study_sources([write(other_modality(), tmp_path)])
