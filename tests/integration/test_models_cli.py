"""The models from the command line and at start-up: init-demo, show, and a node that will
not start on a checkpoint that is missing or is not the file its manifest describes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from node.config import load_settings
from node.pipeline.analysis import InputInstance, StudyInput
from node.pipeline.model_analysis import ModelAnalysis
from tests.helpers import REPO, Peer, config_toml, free_port
from tests.synthetic import SyntheticPatient, mr_slice, write


def breastnode(config: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node", "--config", str(config), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
        timeout=timeout,
        check=False,
    )


def models_config(tmp_path: Path, models: str = "") -> Path:
    config = tmp_path / "config.toml"
    extra = '[pipeline]\nanalysis = "models"\n' + (f"[models]\n{models}\n" if models else "")
    config.write_text(config_toml(tmp_path / "store", free_port(), [Peer("s", "S")], extra=extra))
    return config


def test_serve_refuses_to_start_without_the_demo_checkpoint(tmp_path: Path) -> None:
    config = models_config(tmp_path)
    started = breastnode(config, "serve", timeout=60)
    assert started.returncode != 0
    assert "models init-demo" in started.stderr


def test_serve_refuses_a_checkpoint_that_is_not_its_manifest(
    tmp_path: Path, demo_weights: Path
) -> None:
    copy = tmp_path / "site" / "model.pt"
    copy.parent.mkdir()
    copy.write_bytes(demo_weights.read_bytes() + b"tampered")
    copy.with_suffix(".json").write_text(demo_weights.with_suffix(".json").read_text())
    config = models_config(tmp_path, f'mammography = "{copy}"')
    started = breastnode(config, "serve", timeout=60)
    assert started.returncode != 0
    assert "does not match its manifest" in started.stderr
    shown = breastnode(config, "models", "show")
    assert shown.returncode == 1 and "does not match" in shown.stderr


def test_init_demo_writes_a_verified_not_validated_checkpoint(tmp_path: Path) -> None:
    config = models_config(tmp_path)
    made = breastnode(config, "models", "init-demo", "--views", "16", "--epochs", "1")
    assert made.returncode == 0, made.stderr
    assert "NOT FOR CLINICAL USE" in made.stdout
    weights = tmp_path / "store" / "models" / "demo.pt"
    assert weights.is_file() and weights.with_suffix(".json").is_file()
    again = breastnode(config, "models", "init-demo", "--if-missing")
    assert again.returncode == 0 and "present" in again.stdout
    shown = breastnode(config, "models", "show")
    assert shown.returncode == 0, shown.stderr
    assert '"validated_for_clinical_use": false' in shown.stdout
    assert "NOT FOR CLINICAL USE" in shown.stdout


def test_an_mri_study_without_an_mri_model_ends_with_no_results(
    tmp_path: Path, demo_weights: Path
) -> None:
    settings = load_settings(models_config(tmp_path, f'mammography = "{demo_weights}"'))
    analysis = ModelAnalysis(settings)
    ds = mr_slice(SyntheticPatient())
    path = write(ds, tmp_path / "mr")
    study = StudyInput(
        str(ds.StudyInstanceUID),
        1,
        (InputInstance(ds.SOPInstanceUID, ds.SOPClassUID, ds.SeriesInstanceUID, path),),
        (),
    )
    assert analysis(study) == []


@pytest.mark.parametrize(
    ("models", "complaint"),
    [('mri_pre = ["(unclosed"]', "not a regular expression"), ('device = "tpu"', "device")],
)
def test_bad_models_settings_are_refused(tmp_path: Path, models: str, complaint: str) -> None:
    checked = breastnode(models_config(tmp_path, models), "check-config", timeout=60)
    assert checked.returncode == 2
    assert complaint in checked.stderr
