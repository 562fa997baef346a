"""Settings: defaults, file values, environment overrides and the messages for bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from node.cli import main
from node.config import NodeSettings, Settings, load_settings
from node.errors import ConfigError
from tests.support.helpers import REPO


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_shipped_config_is_valid_and_embedded() -> None:
    settings = load_settings(REPO / "config.toml")
    assert settings.node.ae_title == "BREASTNODE"
    assert settings.node.port == 11112
    assert settings.storage_root == REPO / "var"
    assert settings.database_url == f"sqlite:///{REPO / 'var' / 'index.sqlite3'}"
    assert {p.name for p in settings.peers} >= {"orthanc"}
    # the node's own models are the demo ones that `make run` makes under the store
    assert (
        settings.mammography_checkpoint,
        settings.mri_checkpoint,
        settings.density_checkpoint,
    ) == settings.demo_checkpoints
    assert settings.density_checkpoint == REPO / "var" / "models" / "demo-density.pt"


def test_none_turns_the_mri_and_density_models_off(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, '[models]\nmri = "None"\ndensity = "none"\n'))
    assert settings.mri_checkpoint is None and settings.density_checkpoint is None
    site = load_settings(write(tmp_path, '[models]\ndensity = "site/density.pt"\n'))
    assert site.density_checkpoint == tmp_path / "site" / "density.pt"


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    path = write(tmp_path, '[storage]\nroot = "data"\ndatabase_url = "sqlite:///db/x.sqlite3"\n')
    settings = load_settings(path)
    assert settings.storage_root == tmp_path / "data"
    assert settings.database_url == f"sqlite:///{tmp_path / 'db' / 'x.sqlite3'}"


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[node]\nport = 104\nae_title = "FROMFILE"\n')
    monkeypatch.setenv("BREASTNODE_NODE__PORT", "11112")
    monkeypatch.setenv("BREASTNODE_STORAGE__MIN_FREE_BYTES", "42")
    monkeypatch.setenv(
        "BREASTNODE_PEERS",
        '[{"name": "pacs", "ae_title": "PACS", "host": "10.1.2.3", "port": 104}]',
    )
    settings = load_settings(path)
    assert settings.node.port == 11112
    assert settings.node.ae_title == "FROMFILE"
    assert settings.storage.min_free_bytes == 42
    assert settings.peer("pacs").port == 104


def test_a_misspelt_environment_section_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "")
    monkeypatch.setenv("BREASTNODE_STORAGES__ROOT", "/elsewhere")
    with pytest.raises(ConfigError, match="BREASTNODE_STORAGES__ROOT: no such section"):
        load_settings(path)
    monkeypatch.delenv("BREASTNODE_STORAGES__ROOT")
    monkeypatch.setenv("BREASTNODE_STORAGE__ROOTS", "/elsewhere")  # a key: pydantic's own check
    with pytest.raises(ConfigError, match="unknown key"):
        load_settings(path)


def test_every_bad_value_is_reported_with_its_place(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[node]\nport = 70000\nae_title = "THIS TITLE IS FAR TOO LONG"\ncolour = "red"\n'
        '[storage]\ndatabase_url = "mysql://x"\nmin_free_bytes = -1\n'
        '[[peers]]\nname = "a"\nae_title = "A"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    reported = (
        "6 invalid setting(s)",
        "[node] port: Input should be less than or equal to 65535 (got 70000)",
        "[node] ae_title",
        "[node] colour: unknown key",
        "[storage] database_url",
        "[storage] min_free_bytes",
        "[[peers]] #1 host: Field required",
    )
    message = str(caught.value)
    assert [part for part in reported if part not in message] == []


def test_duplicate_peer_names_are_refused(tmp_path: Path) -> None:
    peer = '[[peers]]\nname = "pacs"\nae_title = "PACS"\nhost = "127.0.0.1"\n'
    with pytest.raises(ConfigError, match="repeated: pacs"):
        load_settings(write(tmp_path, peer + peer))


def test_unknown_peer_name_lists_the_known_ones(tmp_path: Path) -> None:
    settings = load_settings(
        write(tmp_path, '[[peers]]\nname = "pacs"\nae_title = "PACS"\nhost = "127.0.0.1"\n')
    )
    with pytest.raises(ConfigError, match="known peers: pacs"):
        settings.peer("ris")


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[node\n"))
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.toml")


def test_cli_check_config_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    good = write(tmp_path, "[node]\nport = 11112\n")
    assert main(["--config", str(good), "check-config"]) == 0
    assert "configuration OK" in capsys.readouterr().out
    monkeypatch.setenv("BREASTNODE_NODE__PORT", "0")
    assert main(["--config", str(good), "check-config"]) == 2
    assert "[node] port: Input should be greater than or equal to 1" in capsys.readouterr().err


def test_global_options_come_before_or_after_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write(tmp_path, "[node]\nport = 11112\n")
    bad = tmp_path / "absent.toml"
    assert main(["check-config", "--config", str(good)]) == 0
    assert "configuration OK" in capsys.readouterr().out
    assert main(["check-config", "--config", str(bad)]) == 2  # the file named after it is read
    assert "not found" in capsys.readouterr().err
    assert main(["--config", str(bad), "check-config", "--config", str(good)]) == 0  # later wins
    assert main(["--config", str(good), "check-config", "--log-level", "WARNING"]) == 0
    capsys.readouterr()
    # nested commands too (breastnode models show --config FILE)
    assert main(["models", "show", "--config", str(bad)]) == 2
    assert "not found" in capsys.readouterr().err


def test_console_script_and_module_entry_points() -> None:
    script = Path(sys.executable).with_name("breastnode")
    for command in ([str(script)], [sys.executable, "-m", "node"]):
        result = subprocess.run(
            [*command, "--version"], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("breastnode ")


def test_receiver_processes_are_receivers_and_the_old_name_still_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """[node] receivers was "workers", one of three meanings of the word; old files work."""
    assert NodeSettings(receivers=3).receivers == 3
    assert NodeSettings.model_validate({"workers": 2}).receivers == 2
    monkeypatch.setenv("BREASTNODE_NODE__WORKERS", "2")
    assert Settings().node.receivers == 2


def test_the_old_receivers_name_beside_the_new_one_is_not_an_unknown_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A file that still says workers, run with BREASTNODE_NODE__RECEIVERS set (as the test
    nodes and containers do), starts: the new name wins."""
    assert NodeSettings.model_validate({"workers": 4, "receivers": 2}).receivers == 2
    monkeypatch.setenv("BREASTNODE_NODE__RECEIVERS", "3")
    assert Settings(node={"workers": 1}).node.receivers == 3


def test_config_toml_is_rendered_from_the_code_not_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from node.config_template import render_toml

    monkeypatch.setenv("BREASTNODE_NODE__PORT", "5555")
    assert "port = 5555" not in render_toml()
    assert "port = 11112" in render_toml()
