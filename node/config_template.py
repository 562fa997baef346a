"""The documented ``config.toml``, rendered from the settings themselves.

Each key is documented once, in its field's description in :mod:`node.config` (a section's
docstring describes the section); this module writes every key with its default value and
that text as a comment. The shipped ``config.toml`` is its output, and a test keeps the two
equal. After changing a setting, regenerate it:

    python -m node.config_template > config.toml
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from node.config import ENV_PREFIX, PeerSettings, Settings

WIDTH = 96

HEADER = f"""\
BreastNode configuration: every key with its default value and its meaning.
Written by `python -m node.config_template` from the settings' descriptions in
node/config.py: change those, not this file.
Any key can be overridden by an environment variable {ENV_PREFIX}<SECTION>__<KEY>, for
example {ENV_PREFIX}NODE__PORT=11112 or {ENV_PREFIX}STORAGE__DATABASE_URL=postgresql://...
The [[peers]] list is overridden as a whole with JSON in {ENV_PREFIX}PEERS.
Relative paths are relative to the folder of this file."""

# The only values of the shipped file that are not the defaults: with no peer every
# association is refused, so the file lists the ones that try the node on one machine
# (dcmtk's storescu and echoscu, and Orthanc as the README's walkthrough runs it).
EXAMPLE_PEERS = (
    PeerSettings(name="local-storescu", ae_title="STORESCU", host="127.0.0.1"),
    PeerSettings(name="local-echoscu", ae_title="ECHOSCU", host="127.0.0.1"),
    PeerSettings(name="orthanc", ae_title="ORTHANC", host="127.0.0.1", port=4242),
)
PEERS_NOTE = (
    "The default is no peer at all (every association is refused); the peers below try the "
    "node on one machine: dcmtk's storescu and echoscu, and a local Orthanc."
)


def render_toml() -> str:
    """config.toml: the header, then each section with its keys, defaults and descriptions."""
    defaults = Settings.model_construct()  # the code's defaults, never the environment's
    lines = [f"# {line}" for line in HEADER.splitlines()]
    for name, field in Settings.model_fields.items():
        if field.exclude:
            continue
        lines.append("")
        if name == "peers":
            lines += _peers()
            continue
        section: BaseModel = getattr(defaults, name)
        lines += _comment(_doc(type(section)))
        lines.append(f"[{name}]")
        lines += _keys(section)
    return "\n".join(lines) + "\n"


def _peers() -> list[str]:
    lines = _comment(_doc(PeerSettings))
    for key, field in PeerSettings.model_fields.items():
        lines += _comment(f"{key}: {field.description}", indent="#   ")
    lines += _comment(PEERS_NOTE)
    for number, peer in enumerate(EXAMPLE_PEERS):
        if number:
            lines.append("")
        lines.append("[[peers]]")
        lines += [
            f"{key} = {toml_value(value)}"
            for key, value in peer.model_dump(exclude_defaults=True).items()
        ]
    return lines


def _keys(section: BaseModel) -> list[str]:
    lines: list[str] = []
    for key, field in type(section).model_fields.items():
        if not field.description:
            raise ValueError(f"{type(section).__name__}.{key} has no description")
        lines += _comment(field.description)
        lines.append(f"{key} = {toml_value(getattr(section, key))}")
    return lines


def _doc(model: type[BaseModel]) -> str:
    if not model.__doc__:
        raise ValueError(f"{model.__name__} has no docstring")
    return " ".join(model.__doc__.split())


def _comment(text: str, indent: str = "# ") -> list[str]:
    wrapped: list[str] = []
    for paragraph in text.strip().split("\n\n"):
        wrapped += textwrap.wrap(
            " ".join(paragraph.split()),
            WIDTH,
            initial_indent="# ",
            subsequent_indent=indent,
            break_on_hyphens=False,
        )
    return wrapped


def toml_value(value: Any) -> str:
    """A default as a TOML literal (the types the settings use)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Path):
        return json.dumps(str(value))
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


if __name__ == "__main__":
    sys.stdout.write(render_toml())
