"""The completion sweep over a real index and queue, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from node.pipeline.completion import sweep
from storage.index import InstanceIndex
from storage.queue import JobQueue
from storage.records import (
    InstanceRecord,
    PatientRecord,
    ReceivedInstance,
    Reception,
    SeriesRecord,
    StoredFile,
    StudyRecord,
)

T0 = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
QUIET = timedelta(seconds=30)
MG = "1.2.840.10008.5.1.4.1.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"


def receive(
    index: InstanceIndex,
    study: str,
    n: int,
    at: datetime,
    lat: str = "L",
    view: str = "CC",
    sop_class: str = MG,
) -> None:
    sop = f"{study}.{n}"
    index.add(
        ReceivedInstance(
            patient=PatientRecord(patient_id="SYN-SWEEP"),
            study=StudyRecord(study_instance_uid=study),
            series=SeriesRecord(
                series_instance_uid=f"{study}.0", modality="MG" if sop_class == MG else "MR"
            ),
            instance=InstanceRecord(
                sop_instance_uid=sop,
                sop_class_uid=sop_class,
                transfer_syntax_uid="1.2.840.10008.1.2.1",
                image_laterality=lat,
                view_position=view,
            ),
            file=StoredFile(f"objects/x/{sop}.dcm", 1, "0" * 64),
            reception=Reception("SCU", "127.0.0.1", at),
        )
    )


def test_four_views_open_version_one_at_once_and_only_once(engine: Engine) -> None:
    index, queue = InstanceIndex(engine), JobQueue(engine)
    for n, (lat, view) in enumerate([("R", "CC"), ("L", "CC"), ("R", "MLO")]):
        receive(index, "1.9.1", n, T0, lat, view)
    assert sweep(engine, T0 + timedelta(seconds=1), QUIET) == []
    receive(index, "1.9.1", 3, T0 + timedelta(seconds=2), "L", "MLO")
    opened = sweep(engine, T0 + timedelta(seconds=2), QUIET)
    assert len(opened) == 1
    assert sweep(engine, T0 + timedelta(seconds=60), QUIET) == []  # nothing new arrived
    [job] = queue.jobs()
    assert (job.study_instance_uid, job.version, job.kind) == ("1.9.1", 1, "analysis")


def test_mri_waits_for_quiet_and_late_instance_reopens(engine: Engine) -> None:
    index, queue = InstanceIndex(engine), JobQueue(engine)
    receive(index, "1.9.2", 0, T0, sop_class=MR)
    receive(index, "1.9.2", 1, T0 + timedelta(seconds=10), sop_class=MR)
    assert sweep(engine, T0 + timedelta(seconds=39), QUIET) == []
    assert len(sweep(engine, T0 + timedelta(seconds=40), QUIET)) == 1
    receive(index, "1.9.2", 2, T0 + timedelta(minutes=5), sop_class=MR)
    assert sweep(engine, T0 + timedelta(minutes=5, seconds=10), QUIET) == []
    assert len(sweep(engine, T0 + timedelta(minutes=5, seconds=30), QUIET)) == 1
    assert [(j.version, j.study_instance_uid) for j in queue.jobs()] == [(1, "1.9.2"), (2, "1.9.2")]


def test_concurrent_sweeps_open_each_version_once(engine: Engine) -> None:
    index = InstanceIndex(engine)
    for study in range(8):
        receive(index, f"1.9.3.{study}", 0, T0, sop_class=MR)
    results: list[list[int]] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(sweep(engine, T0 + timedelta(minutes=1), QUIET))
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    opened = [job for result in results for job in result]
    assert len(opened) == len(set(opened)) == 8
    assert len(JobQueue(engine).jobs()) == 8
