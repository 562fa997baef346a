"""Received studies the analysis used to choke on. An invalid birth date: stored (on
PostgreSQL too, whose index column holds 8 characters), analysed, and never printed; a failure
whose library message quotes a received value is recorded without it. One view whose pixel
data cannot be decoded (markers the structural check accepts, a codestream no decoder can
read): left out once, as a permanent failure with a log line and an audit record, and the
study's other views analysed."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import JPEG2000Lossless
from pynetdicom import _config
from sqlalchemy import text

from models.synthetic import SyntheticPatient, mammogram, phantom_dicom_study, write
from node.audit.messages import Auditor, Outcome
from node.config import Settings
from node.dicom.status import StoreStatus
from node.pipeline.analysis import StudyInput
from node.pipeline.completion import sweep
from node.pipeline.model_analysis import ModelAnalysis
from storage.audit import AuditTrail
from storage.outbox import Outbox
from storage.queue import JobQueue, JobState
from storage.times import utcnow
from tests.support.cli import breastnode
from tests.support.dicom_bytes import unvalidated
from tests.support.helpers import Peer, config_toml, free_port
from tests.support.scp import RunningSCP, start_scp
from tests.support.stored import analysis_worker

INVALID_BIRTH_DATE = "19601345"  # eight digits, month 13: the log scan looks for it
OLD_STYLE_BIRTH_DATE = "1960-01-01"  # ten characters: longer than the index column


def send(scp: RunningSCP, paths: Sequence[Path]) -> list[int]:
    """Send files as they are on disk over one association."""
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        association = scp.associate(also=(JPEG2000Lossless,))
        assert association.is_established
        statuses = [int(association.send_c_store(path).Status) for path in paths]
        association.release()
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = False
    return statuses


def indexed_birth_dates(scp: RunningSCP) -> list[str | None]:
    with scp.engine.connect() as connection:
        return [row[0] for row in connection.execute(text("SELECT birth_date FROM patients"))]


def test_invalid_birth_dates_are_stored_and_indexed_as_absent(
    tmp_path: Path, database_url: str
) -> None:
    """On PostgreSQL the ten-character date was refused by the index: 0xA700 for ever."""
    scp = start_scp(tmp_path, database_url)
    try:
        paths = []
        for birth_date in (INVALID_BIRTH_DATE, OLD_STYLE_BIRTH_DATE):
            with unvalidated():
                ds = mammogram(SyntheticPatient(birth_date=birth_date), rows=16, columns=16)
                paths.append(write(ds, tmp_path / "in"))
        assert send(scp, paths) == [StoreStatus.SUCCESS] * 2
        assert indexed_birth_dates(scp) == [None, None]
    finally:
        scp.scp.stop()
        scp.engine.dispose()


def mammography_settings(weights: Path) -> Settings:
    return Settings(
        peers=[{"name": "pacs", "ae_title": "PACS", "host": "127.0.0.1", "port": 104}],
        routing={"result_destinations": ["pacs"]},
        models={"mammography": str(weights), "mri": "none", "density": "none", "device": "cpu"},
    )


def jobs_output(scp: RunningSCP, tmp_path: Path) -> str:
    """What ``breastnode jobs`` prints, as a table and as JSON."""
    config = tmp_path / "config.toml"
    url = str(scp.engine.url.render_as_string(hide_password=False))
    config.write_text(config_toml(scp.store.root, free_port(), [Peer("s", "S")], database_url=url))
    table, as_json = breastnode(config, "jobs"), breastnode(config, "jobs", "--json")
    assert table.returncode == 0 and as_json.returncode == 0, table.stderr + as_json.stderr
    json.loads(as_json.stdout)
    return table.stdout + as_json.stdout


@pytest.fixture
def sqlite_scp(tmp_path: Path) -> Iterator[RunningSCP]:
    running = start_scp(tmp_path, f"sqlite:///{tmp_path / 'index.sqlite3'}")
    yield running
    running.scp.stop()
    running.engine.dispose()


def test_a_study_with_an_invalid_birth_date_is_analysed(
    sqlite_scp: RunningSCP, tmp_path: Path, demo_weights: Path
) -> None:
    """highdicom refused the birth date when building the results, quoting it in the
    error that ``breastnode jobs`` printed; the study was retried for hours."""
    patient = SyntheticPatient(birth_date=INVALID_BIRTH_DATE)
    with unvalidated():
        case = phantom_dicom_study(np.random.default_rng(5), "L", tmp_path / "in", patient)
    assert send(sqlite_scp, case.paths) == [StoreStatus.SUCCESS] * 4
    assert len(sweep(sqlite_scp.engine, utcnow(), timedelta(seconds=0))) == 1
    settings = mammography_settings(demo_weights)
    worker = analysis_worker(sqlite_scp.engine, sqlite_scp.store, ModelAnalysis(settings), settings)
    assert worker.run_once() is not None
    [job] = JobQueue(sqlite_scp.engine).jobs()
    assert (job.state, job.last_error) == (JobState.DONE, None)
    results = [
        dcmread(sqlite_scp.store.path_of(d.file_path))
        for d in Outbox(sqlite_scp.engine).deliveries()
    ]
    assert len(results) == 6
    assert {str(ds.PatientBirthDate) for ds in results} == {""}
    assert {str(ds.PatientID) for ds in results} == {patient.patient_id}
    assert INVALID_BIRTH_DATE not in jobs_output(sqlite_scp, tmp_path)


class QuotingFailure:
    """An analysis failing as a library does: its message quotes a received value."""

    def __call__(self, study: StudyInput) -> Sequence[Dataset]:
        raise ValueError(f"Unable to convert '{INVALID_BIRTH_DATE}' to 'DA' object")


def test_a_failure_quoting_a_received_value_is_recorded_without_it(
    sqlite_scp: RunningSCP, tmp_path: Path
) -> None:
    with unvalidated():
        ds = mammogram(SyntheticPatient(birth_date=INVALID_BIRTH_DATE), rows=16, columns=16)
        path = write(ds, tmp_path / "in")
    assert send(sqlite_scp, [path]) == [StoreStatus.SUCCESS]
    assert len(sweep(sqlite_scp.engine, utcnow(), timedelta(seconds=0))) == 1
    settings = Settings(peers=[{"name": "pacs", "ae_title": "PACS", "host": "127.0.0.1"}])
    worker = analysis_worker(sqlite_scp.engine, sqlite_scp.store, QuotingFailure(), settings)
    assert worker.run_once() is not None
    [job] = JobQueue(sqlite_scp.engine).jobs()
    assert job.state is JobState.QUEUED
    assert job.last_error == (f"ValueError in {__name__}.__call__ (message withheld)")
    printed = jobs_output(sqlite_scp, tmp_path)
    assert "ValueError in" in printed and INVALID_BIRTH_DATE not in printed


def undecodable(path: Path) -> Path:
    """The view as JPEG 2000 whose codestream is garbage after its SOC and SIZ markers."""
    ds = dcmread(path)
    ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg", generate_instance_uid=False)
    rng = np.random.default_rng(9)
    value = bytearray(ds.PixelData)
    start = value.index(b"\xff\x4f\xff\x51") + 4
    value[start:-2] = rng.integers(0, 256, len(value) - 2 - start, dtype=np.uint8).tobytes()
    ds.PixelData = bytes(value)
    ds.save_as(path)
    return path


def test_an_undecodable_view_is_left_out_once_and_the_others_analysed(
    sqlite_scp: RunningSCP, tmp_path: Path, demo_weights: Path, caplog: pytest.LogCaptureFixture
) -> None:
    case = phantom_dicom_study(np.random.default_rng(6), "R", tmp_path / "in")
    bad = undecodable(case.paths[1])
    bad_uid = str(dcmread(bad, stop_before_pixels=True).SOPInstanceUID)
    assert send(sqlite_scp, case.paths) == [StoreStatus.SUCCESS] * 4  # markers are fine
    assert len(sweep(sqlite_scp.engine, utcnow(), timedelta(seconds=0))) == 1
    settings = mammography_settings(demo_weights)
    worker = analysis_worker(sqlite_scp.engine, sqlite_scp.store, ModelAnalysis(settings), settings)
    worker.auditor = Auditor(sqlite_scp.engine, "BREASTNODE")
    with caplog.at_level(logging.ERROR, logger="node.pipeline.analysis_worker"):
        assert worker.run_once() is not None
    [job] = JobQueue(sqlite_scp.engine).jobs()
    assert (job.state, job.attempts) == (JobState.DONE, 1)
    assert worker.run_once(now=utcnow() + timedelta(hours=7)) is None  # never tried again
    results = [
        dcmread(sqlite_scp.store.path_of(d.file_path))
        for d in Outbox(sqlite_scp.engine).deliveries()
    ]
    overlays = [ds for ds in results if ds.Modality == "MG" and "SourceImageSequence" in ds]
    sources = {str(ds.SourceImageSequence[0].ReferencedSOPInstanceUID) for ds in overlays}
    assert len(overlays) == 3 and bad_uid not in sources
    [line] = [r.getMessage() for r in caplog.records if r.name == "node.pipeline.analysis_worker"]
    assert bad_uid in line and "permanent failure" in line
    assert "pixel data cannot be decoded (every available decoder refused it)" in line
    audited = [r for r in AuditTrail(sqlite_scp.engine).records() if "left out" in r.message]
    [record] = audited
    assert record.outcome == int(Outcome.SERIOUS_FAILURE) and bad_uid in record.message
