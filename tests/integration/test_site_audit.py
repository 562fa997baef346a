"""``breastnode models audit`` end to end: studies stored and analysed through the worker
(their TID 1500 SRs in the file store, as the node keeps them), an outcomes file with
every kind of row, and a report whose figures are counted by hand and that names no one."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from sqlalchemy import Engine

from models.serving.aggregate import category
from models.serving.result import BreastResult, ImageResult, ModelInfo, StudyResult
from models.synthetic import SyntheticPatient, mammogram
from node.cli.site_audit import TID_1500_SOP_CLASS, read_outcomes
from node.config import Settings, load_settings
from node.pipeline.analysis import StudyInput
from node.pipeline.completion import ANALYSIS
from node.results.build import result_context
from node.results.sr import measurement_report
from storage.analysed import analysed_studies
from storage.db import open_engine
from storage.filestore import FileStore
from storage.migrate import upgrade
from storage.queue import JobQueue
from storage.times import utcnow
from tests.support.cli import breastnode
from tests.support.helpers import config_toml, free_port
from tests.support.stored import analysis_worker, store_dataset

MODEL = ModelInfo("BreastNode site model", "2.1.0", True, 0.5)
# (left breast score, right breast score, cancer): the study score is the higher one, a
# screen positive at >= 0.5: TP 0.90, 0.80; FN 0.40; FP 0.95, 0.70, 0.60; TN 0.00-0.13
SCREENS = [
    (0.90, 0.10, True),
    (0.20, 0.80, True),
    (0.40, 0.05, True),
    (0.95, 0.30, False),
    (0.10, 0.70, False),
    (0.60, 0.60, False),
] + [(0.01 * n, 0.005 * n, False) for n in range(14)]


@dataclass
class Stored:
    uid: str
    accession: str
    patient: SyntheticPatient


class ScriptedAnalysis:
    """Makes each study's TID 1500 SR from the breast scores it is given for that study."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.scores: dict[str, tuple[float, float]] = {}

    def __call__(self, study: StudyInput) -> Sequence[Dataset]:
        sources = {i.sop_instance_uid: dcmread(i.path) for i in study.instances}
        left, right = self.scores[study.study_instance_uid]
        images = tuple(
            ImageResult(uid, np.zeros((ds.Rows, ds.Columns), np.float32), (), ds.ImageLaterality)
            for uid, ds in sources.items()
        )
        breasts = tuple(
            BreastResult(side, score, category(score, MODEL.operating_threshold))
            for side, score in (("L", left), ("R", right))
        )
        result = StudyResult(study.study_instance_uid, images, breasts, max(left, right), MODEL)
        context = result_context(self.settings.results, "BREASTNODE", study.version)
        return [measurement_report(sources, result, context, context.new_uid())]


def receive(engine: Engine, store: FileStore, n: int, study_date: str) -> Stored:
    """A two-view study indexed with its accession number and date, as the SCP does."""
    patient = SyntheticPatient()
    uid, accession = None, f"AUDITACC{n:04d}"
    for laterality in ("L", "R"):
        ds = mammogram(patient, study_uid=uid, laterality=laterality, rows=32, columns=24)
        uid = str(ds.StudyInstanceUID)
        ds.AccessionNumber, ds.StudyDate = accession, study_date
        store_dataset(engine, store, ds, received_at=utcnow(), named=True)
    assert uid is not None
    return Stored(uid, accession, patient)


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str
) -> Iterator[tuple[Path, list[Stored], Engine]]:
    """A node's store with 21 analysed studies (one analysed twice) and its config file;
    made once per database for the tests that read it."""
    folder = tmp_path_factory.mktemp("site")
    root = folder / "store"
    config = folder / "config.toml"
    config.write_text(config_toml(root, free_port(), [], database_url=module_database_url))
    settings = load_settings(config)
    engine = open_engine(settings.database_url)
    upgrade(engine)
    store = FileStore(root)
    store.prepare()
    analysis = ScriptedAnalysis(settings)
    worker = analysis_worker(engine, store, analysis, settings)
    queue = JobQueue(engine)
    studies = []
    for n, (left, right, _cancer) in enumerate([*SCREENS, (0.02, 0.01, False)]):
        stored = receive(engine, store, n, "20240110" if n % 2 else "20240220")
        # the first study's first analysis said normal; its second (latest) is what counts
        analysis.scores[stored.uid] = (0.2, 0.1) if n == 0 else (left, right)
        queue.enqueue(stored.uid, 1, ANALYSIS)
        assert worker.run_once() is not None
        studies.append(stored)
    analysis.scores[studies[0].uid] = SCREENS[0][:2]
    queue.enqueue(studies[0].uid, 2, ANALYSIS)
    assert worker.run_once() is not None
    yield config, studies, engine
    engine.dispose()


def outcomes_file(path: Path, studies: list[Stored]) -> Path:
    """Rows for the first 20 studies (by UID or accession, some with a date and density), and
    one of each kind of unusable row."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(
            [
                "Study_Instance_UID",
                "accession_number",
                "outcome",
                "recalled",
                "date",
                "density",
                "patient_name",
            ]
        )
        for n, ((_l, _r, cancer), s) in enumerate(zip(SCREENS, studies, strict=False)):
            by_uid = n % 3 != 0
            out.writerow(
                [
                    s.uid if by_uid else "",
                    "" if by_uid else s.accession,
                    "cancer" if cancer else ("benign" if n % 4 else "normal"),
                    "yes" if n in (0, 2, 4) else "no",
                    "2024-03-05" if n == 5 else "",
                    "c" if n in (1, 2, 4) else ("b" if n < 6 else ""),
                    str(s.patient.patient_name),
                ]
            )
        out.writerow([studies[1].uid, "", "benign", "", "", "", ""])  # line 22: second row
        out.writerow(["1.2.3.4.5.999", "", "cancer", "", "", "", ""])  # line 23: no result
        out.writerow(["", "", "normal", "", "", "", ""])  # line 24: no key
        out.writerow([studies[3].uid, "", "perhaps", "", "", "", ""])  # line 25: bad outcome
    return path


def test_analysed_studies_reads_the_latest_sr(site: tuple[Path, list[Stored], Engine]) -> None:
    _config, studies, engine = site
    found = {s.study_instance_uid: s for s in analysed_studies(engine, TID_1500_SOP_CLASS)}
    assert set(found) == {s.uid for s in studies}
    first = found[studies[0].uid]
    assert (first.version, first.accession_number, first.study_date) == (
        2,
        "AUDITACC0000",
        "20240220",
    )


def test_outcome_rows_are_used_or_counted(tmp_path: Path) -> None:
    path = tmp_path / "o.csv"
    path.write_text(
        "accession_number,outcome,recalled,date,density\n"
        "A1,Cancer,yes,2024-01-02,b\nA2,benign,maybe,2024-13-40,not a density\n,normal,,,\n"
    )
    rows, excluded, notes, total = read_outcomes(path)
    assert total == 3 and excluded == {"no study key": [4]}
    assert rows[0].cancer and rows[0].recalled and rows[0].density == "b"
    assert rows[1].recalled is None and rows[1].day is None and rows[1].density is None
    assert sum(notes.values()) == 3
    path.write_text("patient_id,outcome\nX,cancer\n")
    with pytest.raises(Exception, match="header"):
        read_outcomes(path)


def test_models_audit_end_to_end(tmp_path: Path, site: tuple[Path, list[Stored], Engine]) -> None:
    config, studies, _engine = site
    outcomes = outcomes_file(tmp_path / "outcomes.csv", studies)
    report = tmp_path / "audit"
    done = breastnode(
        config, "models", "audit", str(outcomes), "--output", str(report), "--bootstrap", "200",
        "--target-recall", "0.10", "--follow-up", "cancer within 12 months",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "20 screens (3 cancers): recall rate 25.0%" in done.stdout
    figures = json.loads((report / "figures.json").read_text())
    o = figures["overall"]
    assert (o["screens"], o["positives"], o["cancers"]) == (20, 5, 3)
    assert o["confusion"] == [[14, 3], [1, 2]]
    assert o["recall_rate"]["value"] == pytest.approx(0.25)
    assert o["cdr_per_1000"]["value"] == pytest.approx(100.0)
    assert o["ppv1"]["value"] == pytest.approx(0.4)
    assert o["sensitivity"]["value"] == pytest.approx(2 / 3)
    assert o["specificity"]["value"] == pytest.approx(14 / 17)
    assert o["roc_auc"]["value"] == pytest.approx(46 / 51)
    assert o["recall_rate"]["low"] < 0.25 < o["recall_rate"]["high"]
    readers = figures["readers"]
    assert readers["recall_rate"]["value"] == pytest.approx(3 / 20)
    context = figures["context"]
    assert context["rows"] == 24
    assert context["excluded"] == {
        "a second row for a study": [22],
        "no stored result of the node": [23],
        "no study key": [24],
        "unknown outcome": [25],
    }
    assert context["analysed_without_outcome"] == 1
    assert context["models"] == {"BreastNode site model 2.1.0": 20}
    # the node's study dates, but for the row that gave its own
    assert set(figures["by_month"]) == {"2024-01", "2024-02", "2024-03"}
    assert figures["by_month"]["2024-03"]["screens"] == 1
    assert figures["by_density"]["c"]["cancers"] == 2
    target = figures["at_target_recall"]
    assert target["recall_rate"] == pytest.approx(0.10)
    assert target["threshold"]["value"] == pytest.approx(0.90)
    # at 0.90 the screens at 0.95 (no cancer) and 0.90 (cancer) are recalled
    assert target["sensitivity"] == pytest.approx(1 / 3)
    assert target["cdr_per_1000"] == pytest.approx(50.0)
    assert {p.name for p in report.iterdir()} == {
        "report.html",
        "figures.json",
        "roc.png",
        "by-month.png",
    }
    page = (report / "report.html").read_text()
    assert "PPV1" in page and "cancer within 12 months" in page and "data:image/png" in page
    assert "No study key, accession number, patient name or patient ID appears" in page
    everything = b"".join(p.read_bytes() for p in report.iterdir())
    for s in studies:
        for secret in (s.uid, s.accession, s.patient.patient_id, s.patient.patient_name):
            assert str(secret).encode() not in everything
    for secret in ("AUDITACC", "SYNTHETIC^", "SYNPID", "1.2.3.4.5.999"):
        assert secret.encode() not in everything
    for s in studies:  # nor in what it logged
        assert s.uid not in done.stderr + done.stdout
        assert str(s.patient.patient_name) not in done.stderr + done.stdout


def test_models_audit_markdown_and_refusals(
    tmp_path: Path, site: tuple[Path, list[Stored], Engine]
) -> None:
    from node.cli import main

    config, studies, _engine = site
    outcomes = outcomes_file(tmp_path / "outcomes.csv", studies)
    base = ["--config", str(config), "models", "audit", str(outcomes), "--bootstrap", "20"]
    assert main([*base, "--output", str(tmp_path / "md"), "--format", "md"]) == 0
    markdown = (tmp_path / "md" / "report.md").read_text()
    assert "| model | 20 | 3 | 25.0% (" in markdown
    assert "![roc.png](roc.png)" in markdown
    unmatched = tmp_path / "unmatched.csv"
    unmatched.write_text("study_instance_uid,outcome\n1.2.3,cancer\n")
    assert main([*base[:4], str(unmatched), "--output", str(tmp_path / "none")]) != 0


def test_a_reports_breast_composition_is_the_studys_density() -> None:
    """The node's report codes each breast's composition (CID 6000); the audit takes the
    denser breast's as the study's, as screening reports density."""
    import dataclasses

    from node.cli.site_audit import sr_scores
    from node.results.provenance import ResultContext, device_uid_for
    from node.results.sr import measurement_report
    from tests.support.results import mammography_case

    case = mammography_case()
    breasts = tuple(
        dataclasses.replace(b, composition="b" if b.laterality == "L" else "d")
        for b in case.result.breasts
    )
    result = dataclasses.replace(case.result, breasts=breasts)
    context = ResultContext("", device_uid_for("BREASTNODE"), 1)
    sources = {str(ds.SOPInstanceUID): ds for ds in case.sources}
    report = measurement_report(sources, result, context, context.new_uid())
    stored = sr_scores(report)
    assert stored is not None
    assert stored.density == "d"
    assert stored.score == max(b.score for b in breasts)
    plain = measurement_report(sources, case.result, context, context.new_uid())
    assert sr_scores(plain) is not None and sr_scores(plain).density is None  # type: ignore[union-attr]
