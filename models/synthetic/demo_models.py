"""The three demo checkpoints (mammography, MRI, density) as the node and the tests get them:
trained once per code version into the shared demo model cache (``demo_cache``), then linked
or copied where they are wanted (``breastnode models init-demo``: the storage root).

Only the default training is cached: a checkpoint trained with other settings (``init-demo
--views 16``) is an experiment, trained where it is asked for and kept nowhere else.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.serving.checkpoint import Manifest, manifest_path, read_verified
from models.synthetic.demo import DemoTraining, train_demo_checkpoint
from models.synthetic.demo_cache import (
    cached_checkpoint,
    default_cache_root,
    is_cached,
    module_sources,
    source_digest,
)
from models.synthetic.demo_density import DEMO_DENSITY_TRAINING, train_demo_density_checkpoint
from models.synthetic.demo_mri import DEMO_MRI_TRAINING, train_demo_mri_checkpoint


@dataclass(frozen=True)
class DemoModel:
    kind: str
    file_name: str  # in the cache entry
    module: str  # the module whose training makes it: its sources key the cache
    training: DemoTraining  # the default, the one cached
    train: Callable[[Path, DemoTraining], Manifest]


DEMO_MODELS = {
    model.kind: model
    for model in (
        DemoModel(
            "mammography",
            "demo.pt",
            "models.synthetic.demo",
            DemoTraining(),
            train_demo_checkpoint,
        ),
        DemoModel(
            "mri",
            "demo-mri.pt",
            "models.synthetic.demo_mri",
            DEMO_MRI_TRAINING,
            train_demo_mri_checkpoint,
        ),
        DemoModel(
            "density",
            "demo-density.pt",
            "models.synthetic.demo_density",
            DEMO_DENSITY_TRAINING,
            train_demo_density_checkpoint,
        ),
    )
}


def demo_cache_key(model: DemoModel) -> str:
    """``<kind>-<digest>`` of what determines the weights: the training's sources, its
    settings, and the versions of torch and numpy (their kernels and random streams)."""
    inputs = (
        repr(model.training),
        f"torch {'.'.join(torch.__version__.split('.')[:2])}",
        f"numpy {'.'.join(np.__version__.split('.')[:2])}",
    )
    return f"{model.kind}-{source_digest(module_sources(model.module), inputs)}"


def demo_cached(kind: str, settings: DemoTraining | None = None, cache: Path | None = None) -> bool:
    """Whether installing the demo ``kind`` with ``settings`` copies it from the cache
    rather than training it (only the default training is cached)."""
    model = DEMO_MODELS[kind]
    if settings is not None and settings != model.training:
        return False
    return is_cached(cache or default_cache_root(), demo_cache_key(model), model.file_name)


def demo_checkpoint(kind: str, cache: Path | None = None) -> Path:
    """The verified weights of the demo ``kind`` (trained now if the cache lacks them)."""
    model = DEMO_MODELS[kind]
    return cached_checkpoint(
        cache or default_cache_root(),
        demo_cache_key(model),
        model.file_name,
        lambda weights: model.train(weights, model.training),
    )


def install_demo_checkpoint(
    kind: str, weights: Path, settings: DemoTraining | None = None, cache: Path | None = None
) -> Manifest:
    """Write the demo ``kind`` to ``weights`` (and its manifest beside it): from the cache
    for the default training, trained on the spot for any other ``settings``."""
    model = DEMO_MODELS[kind]
    if settings is not None and settings != model.training:
        return model.train(weights, settings)
    source = demo_checkpoint(kind, cache)
    weights.parent.mkdir(parents=True, exist_ok=True)
    partial = weights.with_name(weights.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        os.link(source, partial)  # the weights are never written in place: safe to share
    except OSError:  # another file system, or no hard links there
        shutil.copyfile(source, partial)
    partial.replace(weights)
    # the manifest is copied: someone may edit the installed one
    sidecar = manifest_path(weights).with_name(manifest_path(weights).name + ".partial")
    shutil.copyfile(manifest_path(source), sidecar)
    sidecar.replace(manifest_path(weights))
    return read_verified(weights)


def make_demo_checkpoint(weights: Path, settings: DemoTraining | None = None) -> Manifest:
    """The demo mammography checkpoint at ``weights`` (``install_demo_checkpoint``)."""
    return install_demo_checkpoint("mammography", weights, settings)


def make_demo_mri_checkpoint(weights: Path, settings: DemoTraining | None = None) -> Manifest:
    """The demo MRI checkpoint at ``weights`` (``install_demo_checkpoint``)."""
    return install_demo_checkpoint("mri", weights, settings)


def make_demo_density_checkpoint(weights: Path, settings: DemoTraining | None = None) -> Manifest:
    """The demo density checkpoint at ``weights`` (``install_demo_checkpoint``)."""
    return install_demo_checkpoint("density", weights, settings)


def main() -> None:
    """``python -m models.synthetic.demo_models``: fill the cache (``make test`` and ``make
    bench`` do, so no test or benchmark waits for a training) and print the entries."""
    import time

    for kind in DEMO_MODELS:
        started = time.monotonic()
        weights = demo_checkpoint(kind)
        print(f"demo {kind} model: {weights} ({time.monotonic() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
