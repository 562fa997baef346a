"""``breastnode sample-study``: four valid, SYNTHETIC MG views that the node analyses with the
demo model, the lesion breast scored higher."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from node.config import load_settings
from storage.db import open_index
from storage.filestore import FileStore
from tests.support.cli import breastnode, models_config
from tests.support.helpers import require_tool
from tests.support.stored import store_dataset

pytestmark = pytest.mark.timeout(900)


def assert_valid(path: Path) -> None:
    """dciodvfy reports no error (warnings are allowed)."""
    checked = subprocess.run([require_tool("dciodvfy"), str(path)], capture_output=True, text=True)
    errors = [line for line in checked.stderr.splitlines() if line.startswith("Error")]
    assert not errors, errors


def stored_and_analysed(config: Path, datasets: list[Dataset]) -> list[dict[str, Any]]:
    """Store the study in the node's index and store, then ``breastnode analyse`` it: the
    breasts' results (laterality, score, category, composition)."""
    settings = load_settings(config)
    engine, _ = open_index(settings.database_url)
    for ds in datasets:
        store_dataset(engine, FileStore(settings.storage_root), ds)
    engine.dispose()
    analysed = breastnode(config, "analyse", str(datasets[0].StudyInstanceUID), "--json")
    assert analysed.returncode == 0, analysed.stderr
    breasts: list[dict[str, Any]] = json.loads(analysed.stdout)["breasts"]
    return breasts


def test_sample_study_is_valid_synthetic_mammography_the_demo_models_read(
    tmp_path: Path, demo_weights: Path, demo_density_weights: Path
) -> None:
    models = f'mammography = "{demo_weights}"\ndensity = "{demo_density_weights}"'
    config = models_config(tmp_path, models)
    made = breastnode(config, "sample-study", str(tmp_path / "sample"), "--lesion", "R")
    assert made.returncode == 0, made.stderr
    assert "SYNTHETIC SAMPLE - NOT A PATIENT" in made.stdout
    assert "4 views of breast composition b, a lesion in the R breast" in made.stdout
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
    for path in paths:
        assert_valid(path)
    breasts = {b["laterality"]: b for b in stored_and_analysed(config, datasets)}
    assert breasts["R"]["score"] > breasts["L"]["score"]
    # the sample's woman has breasts of composition b (the default), and the demo density
    # model says so
    assert {side: b["composition"] for side, b in breasts.items()} == {"L": "b", "R": "b"}


def test_sample_mri_study_is_valid_synthetic_dce_mri_the_demo_model_reads(
    tmp_path: Path, demo_weights: Path, demo_mri_weights: Path
) -> None:
    config = models_config(tmp_path, f'mammography = "{demo_weights}"\nmri = "{demo_mri_weights}"')
    folder = tmp_path / "sample"
    args = ("--mri", "--lesion", "R", "--size", "128x128", "--slices", "16")
    made = breastnode(config, "sample-study", str(folder), *args)
    assert made.returncode == 0, made.stderr
    assert "3 DCE series of 16 slices, an enhancing lesion in the R breast" in made.stdout
    datasets = [dcmread(p) for p in sorted(folder.glob("*.dcm"))]
    assert len(datasets) == 3 * 16
    assert len({ds.StudyInstanceUID for ds in datasets}) == 1
    assert len({ds.FrameOfReferenceUID for ds in datasets}) == 1
    series = {ds.SeriesInstanceUID: ds.SeriesDescription for ds in datasets}
    assert sorted(series.values()) == [
        "SYNTHETIC DCE T1 POST 1", "SYNTHETIC DCE T1 POST 2", "SYNTHETIC DCE T1 PRE",
    ]  # fmt: skip
    for ds in datasets:
        assert ds.Modality == "MR" and ds.PatientID == "SYNTHETIC-SAMPLE"
        assert "SYNTHETIC" in ds.ImageComments and (ds.Rows, ds.Columns) == (128, 128)
    for ds in datasets[:: len(datasets) // 3]:  # one slice of each series
        path = tmp_path / "checked.dcm"
        ds.save_as(path, enforce_file_format=True)
        assert_valid(path)
    scores = {b["laterality"]: b["score"] for b in stored_and_analysed(config, datasets)}
    assert scores["R"] > 0.5 > scores["L"]


def test_sample_study_without_a_lesion_and_bad_sizes(tmp_path: Path) -> None:
    config = models_config(tmp_path)
    args = ("--lesion", "none", "--size", "128x104", "--density", "d")
    made = breastnode(config, "sample-study", str(tmp_path / "a"), *args)
    assert made.returncode == 0, made.stderr
    assert "4 views of breast composition d, no lesion" in made.stdout
    refused = breastnode(config, "sample-study", str(tmp_path / "d"), "--density", "e")
    assert refused.returncode != 0 and "--density" in refused.stderr
    refused = breastnode(config, "sample-study", str(tmp_path / "b"), "--mri", "--slices", "2")
    assert refused.returncode != 0 and "--slices" in refused.stderr
    refused = breastnode(config, "sample-study", str(tmp_path / "c"), "--size", "32x32")
    assert refused.returncode != 0 and "--size" in refused.stderr
