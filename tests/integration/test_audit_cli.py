"""`breastnode audit verify` on a real run, and after a record was altered."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from models.synthetic import SyntheticPatient, mammogram, write
from tests.conftest import NodeFactory
from tests.support.helpers import echoscu, storescu


def test_audit_verify_passes_on_a_run_and_fails_after_tampering(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    node = node_factory()
    patient = SyntheticPatient()
    files = [write(mammogram(patient, rows=32, columns=32, seed=n), tmp_path) for n in range(2)]
    sent = storescu(node.port, files)
    assert sent.returncode == 0
    assert echoscu(node.port, calling="INTRUDER").returncode != 0
    assert node.stop() == 0

    verify = node.cli("audit", "verify")
    assert verify.returncode == 0, verify.stdout
    exported = node.cli("audit", "export").stdout
    assert exported.count('csd-code="110100"') == 2  # start and stop
    assert 'csd-code="110121"' in exported
    assert exported.count('csd-code="110104"') == 2  # two studies in one association
    assert 'csd-code="110113"' in exported and "INTRUDER" in exported
    assert patient.patient_id in exported

    database = node.root / "index.sqlite3"
    with sqlite3.connect(database) as connection:
        connection.execute("DROP TRIGGER audit_records_no_update")
        connection.execute(
            "UPDATE audit_records SET message = replace(message, 'INTRUDER', "
            "'FRIEND') WHERE event_id = '110113'"
        )
    broken = node.cli("audit", "verify")
    assert broken.returncode == 1
    assert "BROKEN" in broken.stdout and "was changed after it was written" in broken.stdout
