"""The shipped config.toml and the documentation of every key: one source (the settings'
field descriptions), the file rendered from it with the code's own defaults."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from node.config import PeerSettings, Settings, load_settings
from node.config_template import EXAMPLE_PEERS, render_toml
from tests.support.helpers import REPO

SECTIONS = [name for name, field in Settings.model_fields.items() if not field.exclude]


def test_a_configuration_without_the_analysis_key_runs_the_models(tmp_path: Path) -> None:
    """A hand-written file that leaves [pipeline] analysis out gets what config.toml shows."""
    config = tmp_path / "config.toml"
    config.write_text("[pipeline]\nquiet_seconds = 10\n")
    assert load_settings(config).pipeline.analysis == "models"
    config.write_text("")
    assert load_settings(config).pipeline.analysis == "models"


@pytest.mark.parametrize("off", ["none", ""])
def test_analysis_is_turned_off_explicitly(tmp_path: Path, off: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[pipeline]\nanalysis = "{off}"\n')
    assert load_settings(config).pipeline.analysis == ""  # what the pipeline reads as off


def test_shipped_config_has_every_key_with_its_default_value() -> None:
    shipped = tomllib.loads((REPO / "config.toml").read_text())
    assert list(shipped) == SECTIONS  # every section, in the settings' order, nothing else
    defaults = Settings(config_dir=REPO)
    loaded = load_settings(REPO / "config.toml")
    for name in SECTIONS:
        if name == "peers":  # an example list: the default is no peer at all
            assert defaults.peers == []
            assert [p.model_dump() for p in loaded.peers] == [p.model_dump() for p in EXAMPLE_PEERS]
            for peer in shipped["peers"]:
                assert set(peer) <= set(PeerSettings.model_fields)
            continue
        section: BaseModel = getattr(defaults, name)
        assert set(shipped[name]) == set(type(section).model_fields), name
        assert getattr(loaded, name).model_dump() == section.model_dump(), name


def test_shipped_config_is_rendered_from_the_field_descriptions() -> None:
    """Change a description or a default in node/config.py, then regenerate the file with
    `python -m node.config_template > config.toml`."""
    assert (REPO / "config.toml").read_text() == render_toml()


def test_every_key_and_section_is_documented() -> None:
    models: list[type[BaseModel]] = [PeerSettings]
    for name in SECTIONS:
        annotation = Settings.model_fields[name].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            models.append(annotation)
    assert len(models) == len(SECTIONS)
    for model in models:
        assert model.__doc__ and model.__doc__.strip(), model.__name__
        for key, field in model.model_fields.items():
            assert field.description and len(field.description) > 10, f"{model.__name__}.{key}"
    rendered = render_toml()
    for model in models:
        for field in model.model_fields.values():
            assert field.description is not None
            assert " ".join(field.description.split()[:4]) in " ".join(
                line.lstrip("# ") for line in rendered.splitlines()
            )


KEY_MENTION = re.compile(r"`\[(\w+)\] (\w+)|`(\w+)\.(\w+)`")


@pytest.mark.parametrize(
    "document", ["README.md", "docs/PERFORMANCE.md", "docs/MODELS.md", "docker/README.md"]
)
def test_keys_the_documents_mention_exist(document: str) -> None:
    """The README and docs name keys (`[models] mri`, `storage.root`) without repeating what
    they mean; each one they name must be a real key."""
    text = (REPO / document).read_text()
    mentioned = 0
    for match in KEY_MENTION.finditer(text):
        section = match.group(1) or match.group(3)
        key = match.group(2) or match.group(4)
        if match.group(3) and section not in set(SECTIONS) - {"models"}:
            continue  # `models.phantoms` and the like: a module, not a key
        annotation = Settings.model_fields[section].annotation
        assert isinstance(annotation, type) and issubclass(annotation, BaseModel), section
        assert key in annotation.model_fields, f"{document}: [{section}] {key}"
        mentioned += 1
    assert mentioned or document != "README.md"
