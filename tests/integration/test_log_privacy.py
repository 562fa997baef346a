"""A node at DEBUG that receives a study logs the reception and none of the patient's data
(what the whole run's logs are checked for after every test, shown here on one node)."""

from __future__ import annotations

from pathlib import Path

from models.synthetic import SyntheticPatient, mammogram, write
from tests.conftest import NodeFactory
from tests.support.helpers import storescu
from tests.support.log_scan import patient_data_in


def test_a_reception_is_logged_without_patient_data(
    node_factory: NodeFactory, tmp_path: Path
) -> None:
    patient = SyntheticPatient()
    path = write(mammogram(patient, rows=64, columns=64), tmp_path)
    node = node_factory()
    sent = storescu(node.port, [path])
    assert sent.returncode == 0, sent.stderr
    assert node.stop() == 0
    text = node.log.read_text(errors="replace")
    assert "stored SOP Instance" in text, "the node's log does not show the reception"
    assert patient_data_in(text, [patient]) == []
