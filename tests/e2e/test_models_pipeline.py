"""The node's own models end to end: a synthetic four-view phantom study with a lesion in
the left breast is pushed in, the pipeline worker runs the demo checkpoint on it, and the SR,
the Mammography CAD SR and four heatmap overlays arrive in Orthanc, marked NOT FOR CLINICAL
USE, with the CAD mark on a left image within 10 mm of the lesion."""

from __future__ import annotations

import json
import math
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from models.synthetic import phantom_dicom_study
from tests.conftest import NodeFactory
from tests.support.helpers import Peer, storescu, wait_for
from tests.support.orthanc import Orthanc

COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"
MAMMOGRAPHY_CAD_SR = "1.2.840.10008.5.1.4.1.1.88.50"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def pipeline(weights: Path, mri: Path | str = "none", density: Path | str = "none") -> str:
    return f"""
[pipeline]
analysis = "models"
quiet_seconds = 10
sweep_interval_seconds = 0.5
poll_seconds = 0.2
[models]
mammography = "{weights}"
mri = "{mri}"
density = "{density}"
device = "cpu"
[routing]
result_destinations = ["orthanc"]
[delivery]
backoff_base_seconds = 0.5
backoff_cap_seconds = 2
"""


def study_instances(orthanc: Orthanc, study_uid: str) -> list[Dataset]:
    query = {"Level": "Instance", "Query": {"StudyInstanceUID": study_uid}}
    found = orthanc.request("POST", "/tools/find", json.dumps(query).encode())
    return [dcmread(BytesIO(orthanc.download(i))) for i in found]


def scoords(item: Any) -> list[tuple[list[float], str]]:
    """(graphic data, referenced SOP Instance UID) of every SCOORD under an SR item."""
    found = []
    for child in item.get("ContentSequence", []):
        if child.ValueType == "SCOORD":
            [image] = [c for c in child.ContentSequence if c.ValueType == "IMAGE"]
            found.append(
                (
                    [float(v) for v in child.GraphicData],
                    str(image.ReferencedSOPSequence[0].ReferencedSOPInstanceUID),
                )
            )
        found += scoords(child)
    return found


@pytest.mark.orthanc
def test_phantom_study_in_located_findings_out(
    node_factory: NodeFactory, orthanc: Orthanc, demo_weights: Path, tmp_path: Path
) -> None:
    peers = [Peer("storescu", "STORESCU"), Peer("orthanc", "ORTHANC", port=orthanc.dicom_port)]
    node = node_factory(peers, extra=pipeline(demo_weights))
    case = phantom_dicom_study(np.random.default_rng(5), "L", tmp_path / "in")
    sent = storescu(node.port, list(case.paths))
    assert sent.returncode == 0, sent.stderr

    # Orthanc holds only what the node sent it: the results, in the phantom's study
    wait_for(lambda: len(study_instances(orthanc, case.study_uid)) >= 6, timeout=120)
    results = study_instances(orthanc, case.study_uid)
    classes = sorted(str(ds.SOPClassUID) for ds in results)
    assert classes == sorted([COMPREHENSIVE_3D_SR, MAMMOGRAPHY_CAD_SR] + [SECONDARY_CAPTURE] * 4), (
        classes
    )
    for ds in results:
        assert "NOT FOR CLINICAL USE" in ds.SeriesDescription
        assert ds.StudyInstanceUID == case.study_uid

    [cad] = [ds for ds in results if ds.SOPClassUID == MAMMOGRAPHY_CAD_SR]
    marks = scoords(cad)
    assert marks, "the CAD SR has no finding"
    laterality = {
        uid: view.laterality for uid, view in zip(case.sop_instance_uids, case.views, strict=True)
    }
    assert {laterality[uid] for _, uid in marks} == {"L"}, "a mark on the breast without lesion"
    for data, uid in marks:
        view = case.views[case.sop_instance_uids.index(uid)]
        assert view.lesion is not None
        columns, rows = data[0::2], data[1::2]
        centre = (sum(columns) / len(columns), sum(rows) / len(rows))
        distance_mm = view.pixel_spacing_mm * math.hypot(
            centre[0] - view.lesion.center.column, centre[1] - view.lesion.center.row
        )
        print(f"CAD mark on {view.laterality} {view.view}: {distance_mm:.1f} mm from the lesion")
        assert distance_mm <= 10.0

    [job] = json.loads(node.cli("jobs", "--json").stdout)
    assert job["state"] == "done"
    analysed = node.cli("analyse", case.study_uid, "--json")
    assert analysed.returncode == 0, analysed.stderr
    report = json.loads(analysed.stdout)
    assert report["model"]["validated_for_clinical_use"] is False
    scores = {b["laterality"]: b["score"] for b in report["breasts"]}
    assert scores["L"] > scores["R"]
    text = node.cli("analyse", case.study_uid)
    assert "NOT FOR CLINICAL USE" in text.stdout
    saved = node.cli("analyse", case.study_uid, "--save", str(tmp_path / "saved"))
    assert saved.returncode == 0, saved.stderr
    written = sorted((tmp_path / "saved").iterdir())
    assert len(written) == 6
    assert {str(dcmread(p).SOPClassUID) for p in written} == set(classes)
