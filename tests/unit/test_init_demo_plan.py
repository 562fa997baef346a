"""`breastnode models init-demo` makes only the demo checkpoints the configuration uses, so
`make run` trains nothing for a site that configured its own checkpoints (or none)."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.cli import main
from node.cli.models import demo_models_unused
from node.config import load_settings


def configured(tmp_path: Path, text: str) -> Path:
    config = tmp_path / "config.toml"
    config.write_text('[storage]\nroot = "store"\n' + text)
    return config


def test_the_defaults_use_every_demo_checkpoint(tmp_path: Path) -> None:
    assert demo_models_unused(load_settings(configured(tmp_path, ""))) == {}


def test_site_checkpoints_and_none_use_no_demo(tmp_path: Path) -> None:
    sites = '[models]\nmammography = "site/mg.pt"\nmri = "site/mri.pt"\ndensity = "/d.pt"\n'
    unused = demo_models_unused(load_settings(configured(tmp_path, sites)))
    assert unused == {
        "mammography": f"[models] mammography is the site checkpoint {tmp_path / 'site/mg.pt'}",
        "mri": f"[models] mri is the site checkpoint {tmp_path / 'site/mri.pt'}",
        "density": "[models] density is the site checkpoint /d.pt",
    }
    off = '[models]\nmri = "none"\ndensity = "None"\n'
    assert demo_models_unused(load_settings(configured(tmp_path, off))) == {
        "mri": '[models] mri = "none"',
        "density": '[models] density = "none"',
    }


@pytest.mark.parametrize(
    ("analysis", "said"),
    [
        ("none", "off"),
        ("tests.support.standin_analysis:analyse", "the plug-in tests.support.standin_analysis"),
    ],
)
def test_no_model_analysis_uses_no_demo(tmp_path: Path, analysis: str, said: str) -> None:
    config = configured(tmp_path, f'[pipeline]\nanalysis = "{analysis}"\n')
    unused = demo_models_unused(load_settings(config))
    assert set(unused) == {"mammography", "mri", "density"}
    assert all(said in why for why in unused.values())


def test_init_demo_trains_nothing_the_configuration_does_not_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = '[models]\nmammography = "site/mg.pt"\nmri = "none"\ndensity = "site/d.pt"\n'
    config = configured(tmp_path, site)
    # tiny training settings: were a demo trained by mistake, it would cost seconds
    tiny = ["--views", "16", "--epochs", "1"]
    assert main(["--config", str(config), "models", "init-demo", "--if-missing", *tiny]) == 0
    out = capsys.readouterr().out
    assert out.count("checkpoint not needed") == 3
    assert "demo mammography checkpoint not needed: [models] mammography is the site" in out
    assert 'demo mri checkpoint not needed: [models] mri = "none"' in out
    assert "training" not in out
    assert not (tmp_path / "store").exists()
