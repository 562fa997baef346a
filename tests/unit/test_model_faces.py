"""The models' public faces: every name they list resolves, and asking a face for
laterality and view (as the SCP's header reader does) imports no torch."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

FACES = ("models.serving", "models.training")


@pytest.mark.parametrize("face", FACES)
def test_every_listed_name_resolves(face: str) -> None:
    module = importlib.import_module(face)
    assert module.__all__, "an empty face would pass anything"
    missing = [name for name in module.__all__ if getattr(module, name, None) is None]
    assert missing == []
    # a name that is also a submodule's would be shadowed by the module once it is imported
    modules = {p.stem for p in Path(module.__file__ or "").parent.glob("*.py")}
    assert sorted(set(module.__all__) & modules) == []
    with pytest.raises(AttributeError):
        module.not_a_public_name  # noqa: B018 - the lookup itself is the test


def test_laterality_and_view_come_without_torch() -> None:
    code = (
        "import sys; from models.serving import laterality_of, view_code_of; "
        "print('torch' in sys.modules)"
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "False"
