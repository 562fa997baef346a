"""A cache of trained demo checkpoints, one entry per code version, shared by every process of
a user: ``make run`` (``breastnode models init-demo``), the test suite and the benchmarks.

Training the three demo models takes minutes of CPU; their weights depend only on the model
code that the training reads, the training settings and the library versions. An entry's key
is a digest of exactly those (``source_digest``), so a change to any of them trains again and
anything else finds the weights already made.

Where: ``$BREASTNODE_DEMO_CACHE`` if set, else ``$XDG_CACHE_HOME/breastnode/demo-models``,
else ``~/.cache/breastnode/demo-models``; one folder per entry, ``<kind>-<digest>/``, holding
the weights and their manifest. An entry is written whole or not at all (made in a temporary
folder, then renamed into place), under a lock file, so two processes that want the same entry
train it once; it is verified on every read (``read_verified``: the weights' SHA-256 against
the manifest) and made again when broken. Entries unused for ``UNUSED_DAYS`` are removed when
a new one is written.
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from models.serving.checkpoint import CheckpointError, read_verified

logger = logging.getLogger(__name__)

CACHE_VARIABLE = "BREASTNODE_DEMO_CACHE"
UNUSED_DAYS = 14
PACKAGE_ROOT = Path(__file__).resolve().parent.parent.parent  # the folder holding ``models``


def default_cache_root(environ: Mapping[str, str] = os.environ) -> Path:
    """The cache folder this user's processes share (see the module's docstring)."""
    if environ.get(CACHE_VARIABLE):
        return Path(environ[CACHE_VARIABLE])
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "breastnode" / "demo-models"


def module_sources(module: str, root: Path = PACKAGE_ROOT) -> list[Path]:
    """The source files of ``module`` and of every module of its top-level package that it
    imports, directly or not, read from the code (not from what happens to be loaded). The
    packages' ``__init__.py`` files that only gather names are not followed."""
    package = module.split(".")[0]
    found: set[Path] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        path = _file_of(name, root)
        if path is None or path in found:
            continue
        found.add(path)
        pending.extend(_imported(path, name, package, root))
    return sorted(found)


def _file_of(module: str, root: Path) -> Path | None:
    """The file of ``module`` below ``root``: its ``.py`` file, or its package's
    ``__init__.py``; None for a name that is not a module (a function or a class)."""
    path = root.joinpath(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported(path: Path, module: str, package: str, root: Path) -> Iterator[str]:
    """The modules of ``package`` that the file ``path`` (module ``module``) imports."""
    base = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parent = node.module or ""
            if node.level:
                anchor = base.split(".")[: len(base.split(".")) - (node.level - 1)]
                parent = ".".join([*anchor, *([parent] if parent else [])])
            # ``from package import name``: the submodules it names, else the package
            submodules = [f"{parent}.{alias.name}" for alias in node.names]
            names = [name for name in submodules if _file_of(name, root)] or [parent]
        else:
            continue
        yield from (name for name in names if name.split(".")[0] == package)


def source_digest(sources: Iterable[Path], inputs: Iterable[str], root: Path = PACKAGE_ROOT) -> str:
    """A digest of the ``sources`` (their place below ``root`` and their code, without
    comments, docstrings or layout, which train nothing) and of the other ``inputs`` that
    determine the weights (settings, library versions)."""
    digest = hashlib.sha256()
    for path in sorted(sources):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(_code(path) + b"\0")
    for item in inputs:
        digest.update(item.encode() + b"\0")
    return digest.hexdigest()[:20]


def _code(path: Path) -> bytes:
    """The file's syntax tree without docstrings, as text."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if _is_docstring(first):
                node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree).encode()


def _is_docstring(statement: ast.stmt | None) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def is_cached(root: Path, key: str, name: str) -> bool:
    """Whether the entry ``key`` holds verified weights ``name`` (no training needed)."""
    return _verified(root / key / name)


def cached_checkpoint(root: Path, key: str, name: str, make: Callable[[Path], object]) -> Path:
    """The verified weights file ``name`` of the entry ``key``, made first by ``make(weights)``
    (which writes the weights and their manifest) when the entry is missing or broken."""
    entry = root / key
    weights = entry / name
    if _verified(weights):
        _touch(entry)
        return weights
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / f"{key}.lock"):
        if _verified(weights):  # another process made it while this one waited
            _touch(entry)
            return weights
        building = root / f".building-{key}-{uuid.uuid4().hex[:8]}"
        building.mkdir()
        try:
            make(building / name)
            read_verified(building / name)
            if entry.exists():  # broken: set aside, then removed
                logger.warning("demo model cache entry %s is broken; made again", key)
                broken = root / f".broken-{key}-{uuid.uuid4().hex[:8]}"
                entry.rename(broken)
                shutil.rmtree(broken, ignore_errors=True)
            building.rename(entry)
        finally:
            shutil.rmtree(building, ignore_errors=True)
        _remove_unused(root, keep=entry)
    return weights


def _verified(weights: Path) -> bool:
    try:
        read_verified(weights)
    except (CheckpointError, OSError, ValueError, KeyError, TypeError):
        return False
    return True


def _touch(entry: Path) -> None:
    """Mark the entry as used now (its folder's time), so it is not removed as unused."""
    with contextlib.suppress(OSError):  # a read-only cache is still usable
        os.utime(entry)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` held for the block (released if the process dies)."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_unused(root: Path, keep: Path) -> None:
    """Remove entries (and their lock files) not used for ``UNUSED_DAYS``, and what a killed
    process left half made more than a day ago."""
    now = time.time()
    for entry in root.iterdir():
        if entry == keep or not entry.is_dir():
            continue
        unused_for = now - entry.stat().st_mtime
        if entry.name.startswith("."):
            if unused_for > 86400:
                shutil.rmtree(entry, ignore_errors=True)
        elif unused_for > UNUSED_DAYS * 86400:
            shutil.rmtree(entry, ignore_errors=True)
            (root / f"{entry.name}.lock").unlink(missing_ok=True)
