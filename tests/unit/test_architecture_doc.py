"""docs/ARCHITECTURE.md matches the tree: every folder or file it names exists, and every
package of the three is named there, so the page cannot drift from the code unnoticed."""

from __future__ import annotations

import re

from tests.support.helpers import REPO

DOC = REPO / "docs" / "ARCHITECTURE.md"
NAMED = re.compile(r"`((?:node|storage|models|tests)/[\w/.]*)`")


def named_paths() -> set[str]:
    return set(NAMED.findall(DOC.read_text(encoding="utf-8")))


def test_every_path_the_page_names_exists() -> None:
    missing = sorted(p for p in named_paths() if not (REPO / p).exists())
    assert missing == []


def test_every_package_is_on_the_page() -> None:
    named = named_paths()
    packages = sorted(
        f"{init.parent.relative_to(REPO).as_posix()}/"
        for root in ("node", "storage", "models")
        for init in (REPO / root).rglob("__init__.py")
        if "migrations" not in init.parts
    )
    assert packages, "no packages found: the check would pass on anything"
    assert [p for p in packages if p not in named] == []
