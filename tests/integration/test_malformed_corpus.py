"""The malformed corpus (tests.support.malformed) over real associations, on SQLite and
PostgreSQL: no malformed data set is answered 0x0000, each gets the status it must (0xA900,
0xC000, or an A-ABORT where the network library cannot route the command), every refusal
is audited, nothing is left in the spool or the store nor written outside the storage root,
the node stays up and takes the next valid C-STORE; the near misses are stored byte for
byte and read back."""

from __future__ import annotations

import logging
import os
import struct
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom import dcmread

from models.synthetic import SyntheticPatient, mammogram
from node.config import PeerSettings
from node.dicom.structure import Limits
from storage.audit import AuditTrail
from tests.support import dicom_bytes as db
from tests.support.helpers import dataset_bytes, storescu
from tests.support.malformed import (
    ABORTED,
    MISMATCH,
    SUCCESS,
    VERIFICATION,
    Case,
    corpus,
    uid,
    valid_controls,
)
from tests.support.raw_store import RawAssociation, associate
from tests.support.scp import SCU_AE, RunningSCP, start_scp

INFLATE_LIMIT = 1 << 20
SYNTAXES = (
    db.IMPLICIT,
    db.EXPLICIT,
    db.BIG_ENDIAN,
    db.DEFLATED,
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.5",
)


@dataclass
class CorpusNode:
    scp: RunningSCP
    root: Path  # the folder holding the storage root and the SQLite index


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def corpus_node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CorpusNode]:
    """One node per database for the module: the corpus is many inputs, sent quickly."""
    root = tmp_path_factory.mktemp(f"corpus-{request.param}")
    database = None
    if request.param == "sqlite":
        url = f"sqlite:///{root / 'index.sqlite3'}"
    else:
        import psycopg

        admin = request.getfixturevalue("postgres_admin")
        database = f"breastnode_corpus_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"
    peers = [
        PeerSettings(name="raw", ae_title="RAWSCU", host="127.0.0.1"),
        PeerSettings(name="scu", ae_title=SCU_AE, host="127.0.0.1"),
        PeerSettings(name="storescu", ae_title="STORESCU", host="127.0.0.1"),
    ]
    running = start_scp(
        root, url, peers=peers, limits=Limits(max_inflated_bytes=INFLATE_LIMIT), audited=True
    )
    yield CorpusNode(running, root)
    running.scp.stop()
    running.engine.dispose()
    if database is not None:
        import psycopg

        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _associate(port: int) -> RawAssociation:
    classes = sorted({c.context for c in corpus() if c.context != VERIFICATION})
    contexts = [(sop_class, SYNTAXES) for sop_class in classes]
    proposed = [(sop_class, [syntax]) for sop_class, syntaxes in contexts for syntax in syntaxes]
    return associate("127.0.0.1", port, [*proposed, (VERIFICATION, [db.IMPLICIT])])


def send_all(port: int, cases: list[Case]) -> list[int]:
    """Each case's answer, many over one association (a new one after an abort)."""
    answers = []
    association = _associate(port)
    try:
        for case in cases:
            if association.closed:
                association = _associate(port)
            context = association.context_for(case.context, case.syntax)
            sent = association.store(context, case.sop_class.encode(), case.sop_instance, case.data)
            answers.append(sent)
    finally:
        if not association.closed:
            association.release()
    return answers


def _files(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if path.is_file()}


def _spooled_in_temp() -> list[str]:
    """pynetdicom's default spool place (the system temp folder) holds none of ours."""
    prefix = f"rx-{os.getpid()}-"
    return [path for path in Path(tempfile.gettempdir()).iterdir() if path.name.startswith(prefix)]


def test_no_malformed_data_set_is_acknowledged(
    corpus_node: CorpusNode, caplog: pytest.LogCaptureFixture
) -> None:
    scp, cases = corpus_node.scp, corpus()
    assert len(cases) >= 500
    before = _files(corpus_node.root)
    stored_before = set(scp.store.stored_objects())
    audited_before = len(AuditTrail(scp.engine).records())

    answers = send_all(scp.port, cases)

    wrong = [
        f"{case.name}: {answer:#06x}, not {case.expected:#06x}"
        for case, answer in zip(cases, answers, strict=True)
        if answer != case.expected
    ]
    assert not wrong, f"{len(wrong)} of {len(cases)} answered wrongly: {wrong[:20]}"
    assert SUCCESS not in answers
    # nothing partial, nothing stored, nothing outside the storage root
    assert list(scp.store.spool_dir.iterdir()) == []
    assert set(scp.store.stored_objects()) == stored_before
    assert _files(corpus_node.root) - before == set()
    assert _spooled_in_temp() == []
    # every refused C-STORE (the aborted ones never reach the node's handler) is audited
    refused = sum(1 for answer in answers if answer != ABORTED)
    records = AuditTrail(scp.engine).records()[audited_before:]
    failures = [r for r in records if "answered 0x" in r.message]
    assert len(failures) == refused
    assert all(r.outcome == 8 for r in failures)
    lines = [r for r in caplog.records if r.getMessage().startswith("refused SOP Instance")]
    assert len(lines) == refused
    # the node is up and takes the next valid C-STORE
    ds = mammogram(SyntheticPatient(), rows=16, columns=16)
    association = scp.associate()
    assert association.is_established
    assert association.send_c_store(ds).Status == SUCCESS
    association.release()
    assert scp.index.contains(str(ds.SOPInstanceUID))
    counts = Counter((case.kind, answer) for case, answer in zip(cases, answers, strict=True))
    logging.getLogger(__name__).info("corpus answers: %s", dict(sorted(counts.items())))


def test_near_misses_are_stored_byte_for_byte_and_read(corpus_node: CorpusNode) -> None:
    scp, controls = corpus_node.scp, valid_controls()
    answers = send_all(scp.port, controls)
    assert answers == [SUCCESS] * len(controls), [c.name for c in controls]
    rows = {row.sop_instance_uid: row for row in scp.index.instances(uid("study"))}
    for case in controls:
        row = rows[case.sop_instance.decode()]
        stored = scp.store.path_of(row.file_path)
        assert dataset_bytes(stored) == case.data, case.name
        assert row.transfer_syntax_uid == case.syntax
        assert dcmread(stored).pixel_array.size > 0, case.name
    assert list(scp.store.spool_dir.iterdir()) == []


def test_a_uid_with_nul_is_a_permanent_failure(corpus_node: CorpusNode) -> None:
    """PostgreSQL cannot store a NUL: before the UID check it answered 0xA700 (retried for
    ever) or 0x0110. The NUL inside any identifying UID is now 0xA900, on both databases."""
    cases = [c for c in corpus() if "NUL" in c.name]
    assert len(cases) >= 6
    answers = send_all(corpus_node.scp.port, cases)
    assert answers == [MISMATCH] * len(cases)
    assert list(corpus_node.scp.store.spool_dir.iterdir()) == []


def test_a_received_newline_is_escaped_in_the_refusal_line(
    corpus_node: CorpusNode, caplog: pytest.LogCaptureFixture
) -> None:
    [case] = [c for c in corpus() if c.name == "explicit/SOP Instance UID newline"]
    with caplog.at_level(logging.INFO, logger="node"):
        assert send_all(corpus_node.scp.port, [case]) == [MISMATCH]
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("node.")]
    [refusal] = [line for line in ours if line.startswith("refused SOP Instance")]
    assert "1.2\\n2026-01-01 ERROR forged" in refusal
    assert "0xA900" in refusal and "holds characters other than digits and dots" in refusal
    assert not any("\n" in line for line in ours)


def part10(case: Case, path: Path) -> Path:
    """The case as a file dcmtk can read: File Meta Information, then its data set."""
    meta = b"".join(
        (
            db.element(0x00020001, "OB", b"\x00\x01"),
            db.element(0x00020002, "UI", case.sop_class.encode()),
            db.element(0x00020003, "UI", case.sop_instance),
            db.element(0x00020010, "UI", case.syntax.encode()),
            db.element(0x00020012, "UI", b"1.2.826.0.1.3680043.9.7433.99.2"),
        )
    )
    length = db.element(0x00020000, "UL", struct.pack("<L", len(meta)))
    path.write_bytes(b"\x00" * 128 + b"DICM" + length + meta + case.data)
    return path


STORESCU_CASES = {
    "explicit/Pixel Data 10 bytes short": "CannotUnderstand",
    "explicit/Rows + 1": "CannotUnderstand",
    "explicit/nested 40 deep": "CannotUnderstand",
    "explicit/Study UID double dot": "DataSetDoesNotMatchSOPClass",
    "explicit/FoR UID 65 characters": "DataSetDoesNotMatchSOPClass",
}


@pytest.mark.dcmtk
def test_storescu_gets_the_failure_statuses(corpus_node: CorpusNode, tmp_path: Path) -> None:
    """dcmtk's storescu, a real peer, reads each file, sends it and reports our answer."""
    cases = {case.name: case for case in corpus()}
    for name, status in STORESCU_CASES.items():
        path = part10(cases[name], tmp_path / f"{len(status)}-{uuid.uuid4().hex[:6]}.dcm")
        result = storescu(corpus_node.scp.port, [path], "STORESCU", "-v")
        assert f"Received Store Response (Error: {status})" in result.stdout + result.stderr, name
    assert list(corpus_node.scp.store.spool_dir.iterdir()) == []
