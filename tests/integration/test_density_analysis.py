"""A density checkpoint beside the malignancy model: each breast's BI-RADS composition in
the report the node sends. The density network here is an untrained test checkpoint, so
the composition it gives is arbitrary; what is tested is that it is the density model's
answer for that breast and that it reaches the report, coded."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import highdicom as hd
import numpy as np
import pytest
from pydicom import dcmread
from pydicom.sr.codedict import codes
from sqlalchemy import Engine

from models.density import compositions
from models.inference import Engine as ModelEngine
from models.result import COMPOSITIONS
from models.sources import study_sources
from models.study import predict_images
from node.config import Settings
from node.errors import ConfigError
from node.pipeline.completion import sweep
from node.pipeline.model_analysis import ModelAnalysis
from node.results.sr import COMPOSITION_CODES
from storage.filestore import FileStore
from storage.outbox import Outbox
from storage.queue import JobQueue, JobState
from storage.times import utcnow
from tests.model_fixtures import phantom_dicom_study
from tests.models.checkpoints import untrained_checkpoint
from tests.stored import analysis_worker, store_dataset

COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"


def settings_with(demo_weights: Path, density: Path) -> Settings:
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
    network = ModelEngine(density, device="cpu")
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
    found = {}
    for group in groups:
        name = group.tracking_identifier.rsplit(":", 1)[1]
        for evaluation in group.get_qualitative_evaluations():
            if evaluation.name == codes.SCT.BreastComposition:
                found[name] = evaluation.value
    assert found == {
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
