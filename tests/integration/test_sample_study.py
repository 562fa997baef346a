"""``breastnode sample-study``: four valid, SYNTHETIC MG views that the node analyses with the
demo model, the lesion breast scored higher."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from pydicom import dcmread

from node.config import load_settings
from node.service import open_index
from storage.filestore import FileStore
from tests.helpers import require_tool
from tests.integration.test_models_cli import breastnode, models_config
from tests.stored import store_dataset

pytestmark = pytest.mark.timeout(900)


def test_sample_study_is_valid_synthetic_mammography_the_demo_model_reads(
    tmp_path: Path, demo_weights: Path
) -> None:
    config = models_config(tmp_path, f'mammography = "{demo_weights}"')
    made = breastnode(config, "sample-study", str(tmp_path / "sample"), "--lesion", "R")
    assert made.returncode == 0, made.stderr
    assert "SYNTHETIC SAMPLE - NOT A PATIENT" in made.stdout
    paths = sorted((tmp_path / "sample").glob("*.dcm"))
    assert len(paths) == 4
    datasets = [dcmread(p) for p in paths]
    assert len({ds.StudyInstanceUID for ds in datasets}) == 1
    assert {(ds.ImageLaterality, ds.ViewPosition) for ds in datasets} == {
        ("R", "CC"), ("R", "MLO"), ("L", "CC"), ("L", "MLO"),
    }  # fmt: skip
    for ds in datasets:
        assert ds.PatientID == "SYNTHETIC-SAMPLE" and "SYNTHETIC" in ds.ImageComments
        assert (ds.Rows, ds.Columns) == (1024, 832)
    validator = require_tool("dciodvfy")
    for path in paths:
        checked = subprocess.run([validator, str(path)], capture_output=True, text=True)
        errors = [line for line in checked.stderr.splitlines() if line.startswith("Error")]
        assert not errors, errors

    settings = load_settings(config)
    engine, _ = open_index(settings)
    for ds in datasets:
        store_dataset(engine, FileStore(settings.storage_root), ds)
    engine.dispose()
    analysed = breastnode(config, "analyse", str(datasets[0].StudyInstanceUID), "--json")
    assert analysed.returncode == 0, analysed.stderr
    scores = {b["laterality"]: b["score"] for b in json.loads(analysed.stdout)["breasts"]}
    assert scores["R"] > scores["L"]
