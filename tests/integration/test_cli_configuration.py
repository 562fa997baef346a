"""Which configuration a command reads when run from another folder, and the store it must
not create: every command finds the node's configuration as ``serve`` does (--config,
$BREASTNODE_CONFIG, ./config.toml, the user's, the system's), says which one it read or that
the built-in defaults apply, and the read-only commands never make an empty store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from node import config_search
from node.cli import main
from node.config import load_settings
from node.config_search import CONFIG_ENV, SYSTEM_CONFIG, find_config
from storage.db import open_index
from tests.support.cli import breastnode, breastnode_process
from tests.support.helpers import REPO, free_port

READ_ONLY = [
    ["studies"],
    ["instances", "1.2.3"],
    ["jobs"],
    ["deliveries"],
    ["audit", "verify"],
    ["audit", "export"],
    ["resend"],
    ["requeue"],
    ["analyse", "1.2.3"],
    ["models", "show"],
]


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with no configuration anywhere it is looked for."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(config_search, "SYSTEM_CONFIG", tmp_path / "etc" / "config.toml")
    return folder


def node_config(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.toml"
    config.write_text('[storage]\nroot = "store"\n[pipeline]\nanalysis = "none"\n')
    return config


def test_the_search_order(elsewhere: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_config(None).path is None
    system = node_config(tmp_path / "etc")
    assert find_config(None).path == system
    user = node_config(tmp_path / "xdg" / "breastnode")
    assert find_config(None).path == user
    here = node_config(elsewhere)
    assert find_config(None).path == Path("config.toml") and here.is_file()
    named = tmp_path / "named.toml"
    monkeypatch.setenv(CONFIG_ENV, str(named))  # named: taken even before it exists
    assert find_config(None).path == named
    assert find_config(Path("given.toml")).path == Path("given.toml")
    assert find_config(None, {"HOME": "/home/x"}).path == Path("config.toml")
    monkeypatch.chdir(tmp_path)
    assert find_config(None, {"HOME": str(tmp_path / "nohome")}).path == system
    assert config_search.user_config({"HOME": "/home/x"}) == Path(
        "/home/x/.config/breastnode/config.toml"
    )


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_read_only_commands_make_no_store(
    elsewhere: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(command) == 1
    err = capsys.readouterr().err
    assert "no configuration file" in err and "built-in defaults" in err
    assert f"store at {elsewhere / 'var'}" in err
    assert f"no store at {elsewhere / 'var'}" in err
    assert list(elsewhere.iterdir()) == []  # no ./var


def test_check_config_says_the_store_is_not_there_yet(
    elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config"]) == 0
    captured = capsys.readouterr()
    assert "built-in defaults" in captured.err
    assert f"storage root: {elsewhere / 'var'} (not there yet" in captured.out
    assert list(elsewhere.iterdir()) == []


def test_a_found_file_is_named_and_its_store_used(
    elsewhere: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = node_config(tmp_path / "node")
    engine, _index = open_index(
        load_settings(config).database_url
    )  # the node's store, as serve makes it
    engine.dispose()
    monkeypatch.setenv(CONFIG_ENV, str(config))
    assert main(["studies"]) == 0
    captured = capsys.readouterr()
    assert f"configuration {config} (named by ${CONFIG_ENV})" in captured.err
    assert "(0 rows)" in captured.out
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "absent.toml"))
    assert main(["studies"]) == 2
    assert f"configuration error (named by ${CONFIG_ENV})" in capsys.readouterr().err
    monkeypatch.delenv(CONFIG_ENV)
    user = tmp_path / "xdg" / "breastnode"
    user.mkdir(parents=True)
    (user / "config.toml").write_text(f'[storage]\nroot = "{config.parent / "store"}"\n')
    assert main(["jobs", "--json"]) == 0
    captured = capsys.readouterr()
    assert "(found in the user's configuration folder)" in captured.err
    assert captured.out.strip() == "[]"
    assert main(["jobs", "--config", str(config)]) == 0  # named: nothing more to say
    assert "configuration" not in capsys.readouterr().err
    assert list(elsewhere.iterdir()) == []


@pytest.mark.skipif(SYSTEM_CONFIG.exists(), reason="this machine has a system configuration")
def test_the_command_line_from_another_folder(tmp_path: Path) -> None:
    config = node_config(tmp_path / "node")
    engine, _index = open_index(load_settings(config).database_url)
    engine.dispose()
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    env = {k: v for k, v in os.environ.items() if k != CONFIG_ENV}
    env |= {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "PYTHONPATH": str(REPO)}

    def breastnode(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "node", *args],
            cwd=folder,
            env=env | extra,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    lost = breastnode("studies")
    assert lost.returncode == 1
    assert "built-in defaults" in lost.stderr and "no store at" in lost.stderr
    assert not (folder / "var").exists()
    found = breastnode("studies", **{CONFIG_ENV: str(config)})
    assert found.returncode == 0, found.stderr
    assert f"configuration {config}" in found.stderr and "(0 rows)" in found.stdout


def test_an_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    """A command and ``serve`` on a PostgreSQL that is not there: the reason, no traceback."""
    (tmp_path / "store").mkdir()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[storage]\nroot = "{tmp_path / "store"}"\n'
        f'database_url = "postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"\n'
        '[pipeline]\nanalysis = "none"\n'
    )
    for run in (breastnode(config, "studies"), breastnode_process(config, "serve", timeout=60)):
        assert run.returncode == 1, run.stderr
        assert "breastnode: cannot open the index database" in run.stderr
        assert "Connection refused" in run.stderr and "Traceback" not in run.stderr
