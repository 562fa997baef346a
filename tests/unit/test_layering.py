"""The rooms' import rules, read from the code (every import statement, also inside
functions): storage and models never import node nor each other; node.dicom and
node.pipeline do not import each other; the audit and results rooms sit below both; and
nothing imports the composition root (node.runtime, node.cli) but the command line."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.helpers import REPO

PACKAGES = ("node", "storage", "models")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path) -> Iterator[str]:
    """Every module an import statement in ``path`` names, relative imports resolved."""
    name = module_name(path, root)
    package = name.rsplit(".", 1)[0] if path.name != "__init__.py" else name
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                yield ".".join([*base, node.module or ""]).rstrip(".")
            elif node.module:
                yield node.module
                # "from node import runtime" imports node.runtime
                yield from (f"{node.module}.{alias.name}" for alias in node.names)


def import_graph(root: Path = REPO) -> dict[str, set[str]]:
    graph = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            ours = {m for m in imported_modules(path, root) if m.split(".")[0] in PACKAGES}
            graph[module_name(path, root)] = ours
    return graph


def within(module: str, room: str) -> bool:
    return module == room or module.startswith(room + ".")


def violations(graph: dict[str, set[str]], importer: str, imported: str) -> list[str]:
    return sorted(
        f"{source} imports {target}"
        for source, targets in graph.items()
        if within(source, importer)
        for target in targets
        if within(target, imported)
    )


FORBIDDEN = [
    ("storage", "node"),
    ("storage", "models"),
    ("models", "node"),
    ("models", "storage"),
    ("node.dicom", "node.pipeline"),
    ("node.pipeline", "node.dicom"),
    ("node.audit", "node.dicom"),
    ("node.audit", "node.pipeline"),
    ("node.results", "node.dicom"),
    ("node.results", "node.pipeline"),
]


@pytest.mark.parametrize(("importer", "imported"), FORBIDDEN, ids=lambda room: room)
def test_rooms_import_one_way(importer: str, imported: str) -> None:
    assert violations(import_graph(), importer, imported) == []


def test_nothing_imports_the_composition_root() -> None:
    graph = import_graph()
    found = []
    for root, allowed in (("node.runtime", ("node.runtime", "node.cli")), ("node.cli", ())):
        for source, targets in graph.items():
            if within(source, root) or any(within(source, a) for a in allowed):
                continue
            if source == "node.__main__" and root == "node.cli":
                continue
            found += [f"{source} imports {t}" for t in targets if within(t, root)]
    assert found == []


def test_the_reader_sees_every_kind_of_import(tmp_path: Path) -> None:
    """A check that cannot fail is no check: lazy, relative and from-package imports count."""
    for package in PACKAGES:
        (tmp_path / package / "inner").mkdir(parents=True)
    (tmp_path / "storage" / "lazy.py").write_text("def f():\n    from node.config import S\n")
    (tmp_path / "node" / "inner" / "rel.py").write_text("from ..runtime import serve\n")
    (tmp_path / "models" / "pkg.py").write_text("from storage import tables\n")
    graph = import_graph(tmp_path)
    assert "storage.lazy imports node.config" in violations(graph, "storage", "node")
    assert "node.runtime" in graph["node.inner.rel"]
    assert "models.pkg imports storage.tables" in violations(graph, "models", "storage")
    assert violations(graph, "node", "models") == []


def test_benchmarks_and_the_harness_never_import_the_tests() -> None:
    """bench/ and harness/ stand on the packages (and bench on harness), not on tests/; the
    packages import neither."""
    found = []
    for folder in ("bench", "harness", *PACKAGES):
        for path in sorted((REPO / folder).rglob("*.py")):
            for imported in imported_modules(path, REPO):
                top = imported.split(".")[0]
                if top == "tests" or (folder in PACKAGES and top in {"harness", "bench"}):
                    found.append(f"{path.relative_to(REPO)} imports {imported}")
    assert found == []
