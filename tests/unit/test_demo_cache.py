"""The demo model cache: keyed by what determines the weights, verified on read, rebuilt when
broken, made once when two processes want it at once. A tiny fake ``make`` stands in for
training."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from models.serving.checkpoint import TASKS, Manifest, file_sha256, read_verified, write_manifest
from models.synthetic.demo import DemoTraining
from models.synthetic.demo_cache import (
    CACHE_VARIABLE,
    UNUSED_DAYS,
    cached_checkpoint,
    default_cache_root,
    module_sources,
    source_digest,
)
from models.synthetic.demo_models import (
    DEMO_MODELS,
    DemoModel,
    demo_checkpoint,
    install_demo_checkpoint,
)


class FakeTraining:
    """Writes a small weights file and its manifest, counting its calls."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.calls = 0
        self.seconds = seconds
        self.lock = threading.Lock()

    def __call__(self, weights: Path) -> None:
        with self.lock:
            self.calls += 1
        time.sleep(self.seconds)
        weights.write_bytes(b"weights " * 100)
        write_manifest(
            weights,
            Manifest(
                name="fake-demo",
                version="1.0.0",
                task="lesion",
                labels=TASKS["lesion"],
                backbone="resnet18",
                input_size=(64, 48),
                operating_threshold=0.5,
                sha256=file_sha256(weights),
                validated_for_clinical_use=False,
                training_data="DEMO ONLY: nothing",
            ),
        )


def test_the_cache_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    home = Path.home()
    assert default_cache_root({}) == home / ".cache" / "breastnode" / "demo-models"
    assert default_cache_root({"XDG_CACHE_HOME": "/x"}) == Path("/x/breastnode/demo-models")
    both = {"XDG_CACHE_HOME": "/x", CACHE_VARIABLE: "/y/demo"}
    assert default_cache_root(both) == Path("/y/demo")


def package(tmp_path: Path) -> Path:
    """A small package ``pkg``: ``top`` imports ``a`` (which imports ``b`` relatively);
    ``other`` is imported by nobody."""
    root = tmp_path / "src"
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("from pkg.other import thing\n")
    (root / "pkg" / "sub" / "__init__.py").write_text("")
    (root / "pkg" / "top.py").write_text("import numpy\nfrom pkg.sub.a import f\n")
    (root / "pkg" / "sub" / "a.py").write_text("from . import b\nf = 1\n")
    (root / "pkg" / "sub" / "b.py").write_text("x = 1\n")
    (root / "pkg" / "other.py").write_text("thing = 1\n")
    return root


def test_the_sources_are_what_the_module_imports_of_its_package(tmp_path: Path) -> None:
    root = package(tmp_path)
    names = [p.relative_to(root).as_posix() for p in module_sources("pkg.top", root)]
    assert names == ["pkg/sub/a.py", "pkg/sub/b.py", "pkg/top.py"]


def test_the_digest_changes_when_a_source_or_an_input_changes(tmp_path: Path) -> None:
    root = package(tmp_path)
    first = source_digest(module_sources("pkg.top", root), ["settings 1"], root)
    assert first == source_digest(module_sources("pkg.top", root), ["settings 1"], root)
    assert first != source_digest(module_sources("pkg.top", root), ["settings 2"], root)
    (root / "pkg" / "other.py").write_text("thing = 2\n")  # not read by the training
    assert first == source_digest(module_sources("pkg.top", root), ["settings 1"], root)
    b = root / "pkg" / "sub" / "b.py"  # read, indirectly
    b.write_text('"""Said otherwise."""\n\n# a comment\nx  =  1  # the same code\n')
    assert first == source_digest(module_sources("pkg.top", root), ["settings 1"], root)
    b.write_text("x = 2\n")
    assert first != source_digest(module_sources("pkg.top", root), ["settings 1"], root)


def test_the_demo_checkpoints_are_keyed_by_the_sources_their_training_reads() -> None:
    names = {p.name for p in module_sources("models.synthetic.demo_mri")}
    assert {"demo.py", "demo_mri.py", "mri_phantoms.py", "phantoms.py", "networks.py"} <= names
    assert {"checkpoint.py", "preprocess.py", "result.py", "sources.py", "volumes.py"} <= names
    assert not {"dicom.py", "samples.py", "demo_density.py", "demo_cache.py"} & names


def test_an_entry_is_made_once_then_read(tmp_path: Path) -> None:
    make = FakeTraining()
    weights = cached_checkpoint(tmp_path, "fake-0123", "demo.pt", make)
    assert read_verified(weights).name == "fake-demo"
    assert weights.parent == tmp_path / "fake-0123"
    assert cached_checkpoint(tmp_path, "fake-0123", "demo.pt", make) == weights
    assert make.calls == 1
    assert cached_checkpoint(tmp_path, "fake-4567", "demo.pt", make) != weights
    assert make.calls == 2
    assert not list(tmp_path.glob(".building-*"))


@pytest.mark.parametrize("damage", ["weights", "manifest", "missing manifest", "garbage"])
def test_a_broken_entry_is_made_again(tmp_path: Path, damage: str) -> None:
    make = FakeTraining()
    weights = cached_checkpoint(tmp_path, "fake-0123", "demo.pt", make)
    sidecar = weights.with_suffix(".json")
    if damage == "weights":
        weights.write_bytes(weights.read_bytes() + b"changed")
    elif damage == "manifest":
        sidecar.write_text(sidecar.read_text().replace('"1.0.0"', '"1.0.1"').replace("a", "b"))
    elif damage == "missing manifest":
        sidecar.unlink()
    else:
        sidecar.write_text("{not json")
    again = cached_checkpoint(tmp_path, "fake-0123", "demo.pt", make)
    assert again == weights and make.calls == 2
    assert read_verified(again).name == "fake-demo"
    assert not list(tmp_path.glob(".broken-*"))


def test_a_failed_training_leaves_no_entry(tmp_path: Path) -> None:
    def failing(weights: Path) -> None:
        weights.write_bytes(b"half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        cached_checkpoint(tmp_path, "fake-0123", "demo.pt", failing)
    assert not (tmp_path / "fake-0123").exists()
    assert not list(tmp_path.glob(".building-*"))
    make = FakeTraining()
    assert read_verified(cached_checkpoint(tmp_path, "fake-0123", "demo.pt", make))


def test_two_at_once_train_once_and_both_get_the_entry(tmp_path: Path) -> None:
    make = FakeTraining(seconds=0.5)
    got: list[Path] = []

    def want() -> None:
        got.append(cached_checkpoint(tmp_path, "fake-0123", "demo.pt", make))

    threads = [threading.Thread(target=want) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert make.calls == 1
    assert len(got) == 3 and len(set(got)) == 1
    assert read_verified(got[0]).name == "fake-demo"


def test_entries_unused_for_weeks_go_when_a_new_one_is_made(tmp_path: Path) -> None:
    make = FakeTraining()
    old = cached_checkpoint(tmp_path, "fake-old", "demo.pt", make).parent
    recent = cached_checkpoint(tmp_path, "fake-recent", "demo.pt", make).parent
    weeks_ago = time.time() - (UNUSED_DAYS + 1) * 86400
    os.utime(old, (weeks_ago, weeks_ago))
    cached_checkpoint(tmp_path, "fake-new", "demo.pt", make)
    assert not old.exists() and not (tmp_path / "fake-old.lock").exists()
    assert recent.is_dir()


def fake_demo(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeTraining, list[DemoTraining]]:
    """The mammography demo replaced by a fake training (it records the settings)."""
    make = FakeTraining()
    asked: list[DemoTraining] = []

    def train(weights: Path, settings: DemoTraining) -> Manifest:
        asked.append(settings)
        make(weights)
        return read_verified(weights)

    model = DemoModel("mammography", "demo.pt", "models.synthetic.phantoms", DemoTraining(), train)
    monkeypatch.setitem(DEMO_MODELS, "mammography", model)
    return make, asked


def test_installing_the_demo_links_the_cached_weights_and_copies_the_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make, asked = fake_demo(monkeypatch)
    cache = tmp_path / "cache"
    first = tmp_path / "store" / "models" / "demo.pt"
    install_demo_checkpoint("mammography", first, DemoTraining(), cache)
    second = tmp_path / "other" / "demo.pt"
    install_demo_checkpoint("mammography", second, None, cache)
    assert make.calls == 1 and asked == [DemoTraining()]
    cached = demo_checkpoint("mammography", cache)
    assert cached.is_relative_to(cache)
    for installed in (first, second):
        assert read_verified(installed) == read_verified(cached)
        assert installed.stat().st_ino == cached.stat().st_ino  # linked, not copied
        sidecar = installed.with_suffix(".json")
        assert sidecar.stat().st_ino != cached.with_suffix(".json").stat().st_ino
    first.with_suffix(".json").write_text("edited")  # an edited manifest stays where it is
    assert read_verified(demo_checkpoint("mammography", cache)).name == "fake-demo"
    assert make.calls == 1


def test_a_demo_of_other_settings_is_trained_where_asked_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make, asked = fake_demo(monkeypatch)
    cache = tmp_path / "cache"
    few = DemoTraining(views=16, epochs=1)
    install_demo_checkpoint("mammography", tmp_path / "few.pt", few, cache)
    assert asked == [few] and make.calls == 1
    assert read_verified(tmp_path / "few.pt").name == "fake-demo"
    assert not cache.exists()
