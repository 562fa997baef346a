"""The worker hands several queued studies to the node's models at once: their views share
the network's batches, each study gets its own results, and a study that cannot be read
fails alone (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import highdicom as hd
import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from sqlalchemy import Engine

from models.synthetic import PhantomCase, SyntheticPatient, mammogram, phantom_dicom_study
from node.config import Settings
from node.pipeline.completion import sweep
from node.pipeline.model_analysis import ModelAnalysis
from storage.filestore import FileStore
from storage.outbox import Outbox
from storage.queue import JobQueue, JobState
from storage.times import utcnow
from tests.support.stored import analysis_worker, store_dataset

COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"


def broken_mammogram() -> Dataset:
    ds = mammogram(SyntheticPatient())
    ds.PixelData = ds.PixelData[:100]  # far too short for its rows and columns
    return ds


def mammography_only(weights: Path, **models: object) -> Settings:
    """The demo mammography model on the CPU, results to one PACS."""
    return Settings(
        peers=[{"name": "pacs", "ae_title": "PACS", "host": "127.0.0.1", "port": 104}],
        routing={"result_destinations": ["pacs"]},
        models={"mammography": str(weights), "mri": "none", "density": "none", "device": "cpu"}
        | models,
    )


def stored_phantom_studies(
    engine: Engine, store: FileStore, folder: Path, lesion_sides: str, seed: int
) -> list[PhantomCase]:
    """One phantom study per lesion side, written under ``folder`` and stored, not yet swept
    into jobs."""
    rng = np.random.default_rng(seed)
    cases = [
        phantom_dicom_study(rng, side, folder / f"in{n}") for n, side in enumerate(lesion_sides)
    ]
    for case in cases:
        for path in case.paths:
            store_dataset(engine, store, dcmread(path))
    return cases


def test_queued_studies_are_analysed_together_and_fail_alone(
    engine: Engine, tmp_path: Path, demo_weights: Path
) -> None:
    store = FileStore(tmp_path / "store")
    store.prepare()
    cases = stored_phantom_studies(engine, store, tmp_path, "LRL", seed=21)
    broken = broken_mammogram()
    store_dataset(engine, store, broken)
    assert len(sweep(engine, utcnow(), timedelta(seconds=30))) == 4

    settings = mammography_only(demo_weights, studies_per_batch=8)
    analysis = ModelAnalysis(settings)
    worker = analysis_worker(engine, store, analysis, settings)
    assert worker.run_once() is not None
    assert worker.run_once() is None  # one call took every queued study

    jobs = {job.study_instance_uid: job for job in JobQueue(engine).jobs()}
    failed = jobs.pop(str(broken.StudyInstanceUID))
    # An undecodable pixel stream never decodes: dead-lettered at once, not retried (issue 16).
    assert (failed.state, failed.attempts) == (JobState.DEAD, 1)
    assert failed.last_error
    assert "pixel data of a stored instance cannot be decoded" in failed.last_error
    assert {job.state for job in jobs.values()} == {JobState.DONE}

    deliveries = Outbox(engine).deliveries()
    for case in cases:
        mine = [d for d in deliveries if d.study_instance_uid == case.study_uid]
        assert len(mine) == 6  # TID 1500 SR, CAD SR, four overlays
        [report] = [
            dcmread(store.path_of(d.file_path))
            for d in mine
            if dcmread(store.path_of(d.file_path), stop_before_pixels=True).SOPClassUID
            == COMPREHENSIVE_3D_SR
        ]
        assert report.StudyInstanceUID == case.study_uid
        assert "NOT FOR CLINICAL USE" in report.SeriesDescription


def test_study_of_images_of_both_breasts_is_reported_not_retried(
    engine: Engine, tmp_path: Path, demo_weights: Path
) -> None:
    """Views marked Image Laterality B (no series Laterality) name no single breast: the
    model gives no breast result, and the report carries the study's score in a study-level
    group. Before, such a study with no finding failed its analysis and was retried."""
    store = FileStore(tmp_path / "store")
    store.prepare()
    patient = SyntheticPatient()
    study_uid = None
    for seed, view in enumerate(("CC", "MLO")):
        ds = mammogram(patient, study_uid=study_uid, view=view, rows=256, columns=192, seed=seed)
        study_uid = ds.StudyInstanceUID
        ds.ImageLaterality = "B"
        if "Laterality" in ds:
            del ds.Laterality
        store_dataset(engine, store, ds)
    assert len(sweep(engine, utcnow(), timedelta(seconds=0))) == 1
    settings = mammography_only(demo_weights)
    worker = analysis_worker(engine, store, ModelAnalysis(settings), settings)
    assert worker.run_once() is not None
    [job] = JobQueue(engine).jobs()
    assert (job.state, job.last_error) == (JobState.DONE, None)
    deliveries = Outbox(engine).deliveries()
    assert len(deliveries) == 4  # TID 1500 SR, CAD SR, two overlays
    [report] = [
        ds
        for ds in (dcmread(store.path_of(d.file_path)) for d in deliveries)
        if ds.SOPClassUID == COMPREHENSIVE_3D_SR
    ]
    groups = hd.sr.Comprehensive3DSR.from_dataset(report).content.get_image_measurement_groups()
    # the study-level group, named after the OHIF tool that draws it (node.results.sr)
    assert [g.tracking_identifier for g in groups] == [
        "Cornerstone3DTools@^0.1.0:RectangleROI:Study"
    ]


def test_a_study_the_network_refuses_fails_alone_in_its_batch(
    engine: Engine, tmp_path: Path, demo_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A network error on a shared batch is not laid on every study in it: each is tried
    alone, and only the one the network refuses is dead-lettered."""
    import models.serving.study as serving_study

    store = FileStore(tmp_path / "store")
    store.prepare()
    cases = stored_phantom_studies(engine, store, tmp_path, "LR", seed=5)
    assert len(sweep(engine, utcnow(), timedelta(seconds=30))) == 2
    refused = cases[0].study_uid
    real = serving_study.analyse_studies

    def refusing(predictor: object, batch: list[tuple[str, object]], kind: str) -> object:
        if any(uid == refused for uid, _ in batch):
            raise ValueError("model input does not fit")
        return real(predictor, batch, kind)  # type: ignore[arg-type]

    monkeypatch.setattr(serving_study, "analyse_studies", refusing)
    settings = mammography_only(demo_weights, studies_per_batch=8)
    worker = analysis_worker(engine, store, ModelAnalysis(settings), settings)
    assert worker.run_once() is not None
    jobs = {job.study_instance_uid: job for job in JobQueue(engine).jobs()}
    assert jobs[refused].state == JobState.DEAD
    assert jobs[cases[1].study_uid].state == JobState.DONE
