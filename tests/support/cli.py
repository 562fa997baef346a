"""The ``breastnode`` command as the tests call it: in this process for the commands that
return (``harness.cli``: no interpreter and torch import per call), as a subprocess for
``serve``, which owns its process; and the configuration the model tests start from."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from harness.cli import run_cli
from tests.support.helpers import REPO, Peer, config_toml, free_port


def breastnode(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``breastnode --config config *args``, run in this process."""
    return run_cli(["--config", str(config), *args], cwd=REPO)


def breastnode_process(
    config: Path, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python -m node --config config *args`` as a subprocess (``serve`` and start-up)."""
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
    """A node configuration with analysis by models; no MRI or density model unless
    ``models`` names one."""
    config = tmp_path / "config.toml"
    for optional in ("mri", "density"):
        if f"{optional} =" not in models:
            models += f'\n{optional} = "none"'
    extra = f'[pipeline]\nanalysis = "models"\n[models]\n{models}\n'
    config.write_text(config_toml(tmp_path / "store", free_port(), [Peer("s", "S")], extra=extra))
    return config
