"""A density checkpoint beside the malignancy model: each breast's BI-RADS composition in
the report the node sends. With an untrained test checkpoint the composition it gives is
arbitrary; what is tested is that it is the density model's answer for that breast and that
it reaches the report, coded. With the demo density checkpoint a sample study's composition
is found, coded in a valid SR, named on the overlays, and the objects still say NOT FOR
CLINICAL USE, even beside a malignancy model that is validated."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pytest
from pydicom import dcmread
from pydicom.sr.codedict import codes
from sqlalchemy import Engine

from models.serving.checkpoint import read_verified, write_manifest
from models.serving.density import compositions
from models.serving.inference import Predictor
from models.serving.result import COMPOSITIONS
from models.serving.sources import study_sources
from models.serving.study import predict_images
from models.synthetic import phantom_dicom_study
from models.synthetic.samples import write_sample_study
from node.config import Settings
from node.errors import ConfigError
from node.pipeline.analysis import InputInstance, StudyInput
from node.pipeline.completion import sweep
from node.pipeline.model_analysis import ModelAnalysis
from node.results.provenance import NOT_FOR_CLINICAL_USE
from node.results.sc import overlay_text
from node.results.sr import COMPOSITION_CODES
from storage.filestore import FileStore
from storage.outbox import Outbox
from storage.queue import JobQueue, JobState
from storage.times import utcnow
from tests.support.checkpoints import untrained_checkpoint
from tests.support.stored import analysis_worker, store_dataset
from tests.support.validators import dsr2html, validated

COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def settings_with(demo_weights: Path, density: Path | str) -> Settings:
    return Settings(
        peers=[{"name": "pacs", "ae_title": "PACS", "host": "127.0.0.1", "port": 104}],
        routing={"result_destinations": ["pacs"]},
        models={
            "mammography": str(demo_weights),
            "mri": "none",
            "density": str(density),
            "device": "cpu",
        },
    )


def test_each_breast_gets_the_density_models_composition_in_its_report(
    engine: Engine, tmp_path: Path, demo_weights: Path
) -> None:
    density = untrained_checkpoint(tmp_path / "density", task="density")
    case = phantom_dicom_study(np.random.default_rng(5), "L", tmp_path / "in")
    store = FileStore(tmp_path / "store")
    store.prepare()
    for path in case.paths:
        store_dataset(engine, store, dcmread(path))
    assert len(sweep(engine, utcnow(), timedelta(seconds=30))) == 1
    settings = settings_with(demo_weights, density)
    worker = analysis_worker(engine, store, ModelAnalysis(settings), settings)
    assert worker.run_once() is not None
    [job] = JobQueue(engine).jobs()
    assert (job.state, job.last_error) == (JobState.DONE, None)

    # what the density network says of each breast: the mean of its views' probabilities
    network = Predictor(density, device="cpu")
    images = study_sources(case.paths).images
    per_side: dict[str, list[tuple[float, ...]]] = {"L": [], "R": []}
    for item in predict_images(network, images):
        per_side[str(item.image.laterality)].append(item.prediction.probabilities)
    expected = {s: COMPOSITIONS[int(np.mean(p, axis=0).argmax())] for s, p in per_side.items()}
    assert compositions(network, images) == expected

    [report] = [
        ds
        for ds in (dcmread(store.path_of(d.file_path)) for d in Outbox(engine).deliveries())
        if ds.SOPClassUID == COMPREHENSIVE_3D_SR
    ]
    groups = hd.sr.Comprehensive3DSR.from_dataset(report).content.get_image_measurement_groups()
    assert coded_compositions(groups) == {
        "Left breast": COMPOSITION_CODES[expected["L"]],
        "Right breast": COMPOSITION_CODES[expected["R"]],
    }


def test_a_checkpoint_of_another_task_is_refused_as_the_density_model(
    tmp_path: Path, demo_weights: Path
) -> None:
    """mini-MIAS's F/G/D classes are not BI-RADS composition: coding them as a-d would be
    wrong, so such a checkpoint is a configuration error at start-up."""
    fgd = untrained_checkpoint(tmp_path / "fgd", task="density_fgd")
    with pytest.raises(ConfigError, match="density"):
        ModelAnalysis(settings_with(demo_weights, fgd))


def coded_compositions(groups: Iterable[Any]) -> dict[str, object]:
    """The CID 6000 breast composition code of each breast's group, by breast."""
    found = {}
    for group in groups:
        name = group.tracking_identifier.rsplit(":", 1)[1]
        for evaluation in group.get_qualitative_evaluations():
            if evaluation.name == codes.SCT.BreastComposition:
                found[name] = evaluation.value
    return found


def validated_copy(weights: Path, folder: Path) -> Path:
    """The demo weights under a manifest that calls them validated for clinical use (a
    stand-in for a site's validated malignancy model)."""
    folder.mkdir()
    copy = folder / "site.pt"
    shutil.copy(weights, copy)
    manifest = dataclasses.replace(read_verified(weights), validated_for_clinical_use=True)
    write_manifest(copy, manifest)
    return copy


def test_the_demo_density_model_finds_a_sample_studys_composition_not_for_clinical_use(
    tmp_path: Path, demo_weights: Path, demo_density_weights: Path
) -> None:
    paths = write_sample_study(tmp_path / "in", "L", (512, 416), seed=3, composition="d")
    instances = []
    for path in paths:
        ds = dcmread(path)
        instances.append(
            InputInstance(ds.SOPInstanceUID, ds.SOPClassUID, ds.SeriesInstanceUID, path)
        )
    study = StudyInput(str(ds.StudyInstanceUID), 1, tuple(instances), ())
    site = validated_copy(demo_weights, tmp_path / "site")
    alone = ModelAnalysis(settings_with(site, "none")).result(study)
    assert alone is not None and alone.result.model.validated_for_clinical_use
    assert all(breast.composition is None for breast in alone.result.breasts)

    analysis = ModelAnalysis(settings_with(site, demo_density_weights))
    analysed = analysis.result(study)
    assert analysed is not None
    result = analysed.result
    assert {b.laterality: b.composition for b in result.breasts} == {"L": "d", "R": "d"}
    # the demo density model's composition makes the whole report not for clinical use
    assert result.model.validated_for_clinical_use is False
    objects = analysis.objects(study, analysed)

    [report] = [ds for ds in objects if ds.SOPClassUID == COMPREHENSIVE_3D_SR]
    path = tmp_path / "sr.dcm"
    back = validated(report, path, "SR with the demo density model's composition")
    assert "Extremely dense" in dsr2html(path)
    groups = hd.sr.Comprehensive3DSR.from_dataset(back).content.get_image_measurement_groups()
    assert coded_compositions(groups) == {
        "Left breast": COMPOSITION_CODES["d"],
        "Right breast": COMPOSITION_CODES["d"],
    }
    assert back.SeriesDescription.startswith(NOT_FOR_CLINICAL_USE)

    overlays = [ds for ds in objects if ds.SOPClassUID == SECONDARY_CAPTURE]
    assert len(overlays) == 4
    assert all(ds.SeriesDescription.startswith(NOT_FOR_CLINICAL_USE) for ds in overlays)
    # each overlay's burned-in label, as build_result_objects writes it for that breast
    breasts = {b.laterality: b for b in result.breasts}
    for image in result.images:
        breast = breasts[str(image.laterality)]
        label = overlay_text(image, breast.score, result.model, breast.composition)
        assert "density d" in label and NOT_FOR_CLINICAL_USE in label, label
