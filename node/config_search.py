"""Which configuration file a command reads.

``serve`` and every other command look in the same places, in this order: the file named
with ``--config``; the file named by ``$BREASTNODE_CONFIG``; ``./config.toml``; the user's
``$XDG_CONFIG_HOME/breastnode/config.toml`` (``~/.config/...`` by default); and the system's
``/etc/breastnode/config.toml``. When none exists the built-in defaults apply, whose store is
``./var``; the command line says so, so that a command run from another folder does not
quietly read or make a store there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

CONFIG_ENV = "BREASTNODE_CONFIG"
WORKING_DIRECTORY_CONFIG = Path("config.toml")
SYSTEM_CONFIG = Path("/etc/breastnode/config.toml")
NAMED = "named with --config"


@dataclass(frozen=True)
class ConfigSource:
    """The file to read and how it was found; no file: the built-in defaults."""

    path: Path | None
    found_by: str  # "named by $BREASTNODE_CONFIG", "found in the working directory", ...


def user_config(environ: Mapping[str, str]) -> Path | None:
    """``$XDG_CONFIG_HOME/breastnode/config.toml``, else under ``~/.config``."""
    base = environ.get("XDG_CONFIG_HOME")
    if not base:
        home = environ.get("HOME")
        if not home:
            return None
        base = str(Path(home) / ".config")
    return Path(base) / "breastnode" / "config.toml"


def search_path(environ: Mapping[str, str]) -> list[tuple[Path, str]]:
    """The files looked for when neither ``--config`` nor ``$BREASTNODE_CONFIG`` names one."""
    places = [(WORKING_DIRECTORY_CONFIG, "found in the working directory")]
    user = user_config(environ)
    if user is not None:
        places.append((user, "found in the user's configuration folder"))
    places.append((SYSTEM_CONFIG, "found in the system's configuration folder"))
    return places


def find_config(given: Path | None, environ: Mapping[str, str] | None = None) -> ConfigSource:
    """The configuration a command reads. A named file (``--config`` or the environment) is
    taken even when it does not exist, so that reading it reports it missing."""
    env = os.environ if environ is None else environ
    if given is not None:
        return ConfigSource(given, NAMED)
    if env.get(CONFIG_ENV):
        return ConfigSource(Path(env[CONFIG_ENV]), f"named by ${CONFIG_ENV}")
    for path, place in search_path(env):
        if path.is_file():
            return ConfigSource(path, place)
    return ConfigSource(None, "built-in defaults")


def searched(environ: Mapping[str, str] | None = None) -> str:
    """The places looked in, for the message that says none had a file."""
    env = os.environ if environ is None else environ
    return ", ".join(
        f"./{path}" if path == WORKING_DIRECTORY_CONFIG else str(path)
        for path, _place in search_path(env)
    )
