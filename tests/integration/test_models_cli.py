"""The models from the command line and at start-up: init-demo, show, and a node that will
not start on a checkpoint that is missing or is not the file its manifest describes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.synthetic import SyntheticPatient, mr_slice, write
from models.synthetic.demo import DEMO_VERSION
from models.synthetic.demo_density import DEMO_DENSITY_NAME, DEMO_DENSITY_VERSION
from node.config import load_settings
from node.pipeline.analysis import InputInstance, StudyInput
from node.pipeline.model_analysis import ModelAnalysis
from tests.support.cli import breastnode, breastnode_process, models_config


def test_serve_refuses_to_start_without_the_demo_checkpoint(tmp_path: Path) -> None:
    config = models_config(tmp_path)
    started = breastnode_process(config, "serve", timeout=60)
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
    started = breastnode_process(config, "serve", timeout=60)
    assert started.returncode != 0
    assert "does not match its manifest" in started.stderr
    shown = breastnode(config, "models", "show")
    assert shown.returncode == 1 and "does not match" in shown.stderr


def test_init_demo_writes_verified_not_validated_checkpoints(tmp_path: Path) -> None:
    config = models_config(tmp_path, 'mri = ""\ndensity = ""')  # the demo ones, the default
    made = breastnode(config, "models", "init-demo", "--views", "16", "--epochs", "1")
    assert made.returncode == 0, made.stderr
    assert made.stdout.count("NOT FOR CLINICAL USE") == 3
    models = tmp_path / "store" / "models"
    for name in ("demo.pt", "demo-mri.pt", "demo-density.pt"):
        assert (models / name).is_file() and (models / name).with_suffix(".json").is_file()
    again = breastnode(config, "models", "init-demo", "--if-missing")
    assert again.returncode == 0 and again.stdout.count("present") == 3
    # a checkpoint of an older demo version is trained again, not kept (make run uses this)
    for name in ("demo.json", "demo-density.json"):
        old = json.loads((models / name).read_text())
        (models / name).write_text(json.dumps({**old, "version": "0.9.0"}))
    stale = breastnode(
        config, "models", "init-demo", "--if-missing", "--views", "16", "--epochs", "1"
    )
    assert stale.returncode == 0, stale.stderr
    assert stale.stdout.count("not this version's demo; training again") == 2
    assert "demo mri checkpoint present" in stale.stdout
    assert json.loads((models / "demo.json").read_text())["version"] == DEMO_VERSION
    density = json.loads((models / "demo-density.json").read_text())
    assert density["version"] == DEMO_DENSITY_VERSION and density["task"] == "density"
    shown = breastnode(config, "models", "show")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count('"validated_for_clinical_use": false') == 3
    assert '"name": "breastnode-demo-mri-phantom"' in shown.stdout
    assert f'"name": "{DEMO_DENSITY_NAME}"' in shown.stdout
    assert "NOT FOR CLINICAL USE" in shown.stdout
    elsewhere = tmp_path / "site" / "density.pt"
    only = ("--only", "density", "--density-output", str(elsewhere), "--views", "8")
    one = breastnode(config, "models", "init-demo", *only, "--epochs", "1")
    assert one.returncode == 0, one.stderr
    assert one.stdout.count("training the demo") == 1 and DEMO_DENSITY_NAME in one.stdout
    assert json.loads(elsewhere.with_suffix(".json").read_text())["training_data"].startswith(
        "DEMO ONLY"
    )


def test_init_demo_copies_the_default_demo_from_the_cache(
    tmp_path: Path, demo_weights: Path
) -> None:
    config = models_config(tmp_path)
    made = breastnode(config, "models", "init-demo", "--only", "mammography")
    assert made.returncode == 0, made.stderr
    assert "installing the demo mammography model from the demo model cache" in made.stdout
    assert "training" not in made.stdout
    installed = tmp_path / "store" / "models" / "demo.pt"
    assert installed.read_bytes() == demo_weights.read_bytes()


def test_serve_wants_the_demo_mri_and_density_checkpoints_unless_none(tmp_path: Path) -> None:
    config = models_config(tmp_path, 'mri = ""')
    made = breastnode(
        config, "models", "init-demo", "--only", "mammography", "--views", "16", "--epochs", "1"
    )
    assert made.returncode == 0, made.stderr
    assert not (tmp_path / "store" / "models" / "demo-mri.pt").exists()
    started = breastnode_process(config, "serve", timeout=60)
    assert started.returncode != 0
    assert "demo-mri" in started.stderr and "models init-demo" in started.stderr
    (tmp_path / "off").mkdir()
    settings = load_settings(models_config(tmp_path / "off", 'mri = "none"'))
    assert settings.mri_checkpoint is None
    settings = load_settings(config)
    assert settings.mri_checkpoint == settings.storage_root / "models" / "demo-mri.pt"
    assert settings.density_checkpoint is None  # "none" (models_config's default)
    # density: empty is the demo density checkpoint, which serve wants like the others
    (tmp_path / "dense").mkdir()
    demo = tmp_path / "store" / "models" / "demo.pt"
    dense = models_config(tmp_path / "dense", f'mammography = "{demo}"\ndensity = ""')
    assert load_settings(dense).density_checkpoint == (
        tmp_path / "dense" / "store" / "models" / "demo-density.pt"
    )
    started = breastnode_process(dense, "serve", timeout=60)
    assert started.returncode != 0
    assert "demo-density" in started.stderr and "models init-demo" in started.stderr


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
    checked = breastnode(models_config(tmp_path, models), "check-config")
    assert checked.returncode == 2
    assert complaint in checked.stderr
