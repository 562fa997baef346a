"""A demo checkpoint from an older DEMO_VERSION (trained on other phantoms) is told apart
from a current one, so ``init-demo --if-missing`` can make it again instead of keeping it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from models.serving.checkpoint import manifest_path, read_verified, write_manifest
from models.synthetic.demo import DEMO_VERSION, demo_checkpoint_current
from models.synthetic.demo_density import DEMO_DENSITY_VERSION
from tests.support.checkpoints import untrained_checkpoint


def test_only_a_verified_checkpoint_of_this_demo_version_is_current(tmp_path: Path) -> None:
    weights = untrained_checkpoint(tmp_path, task="lesion", heatmap="saliency")
    assert read_verified(weights).version != DEMO_VERSION
    assert not demo_checkpoint_current(weights)  # an older (here: another) version
    write_manifest(weights, dataclasses.replace(read_verified(weights), version=DEMO_VERSION))
    assert demo_checkpoint_current(weights)
    # each demo has its own version (the density demo's is DEMO_DENSITY_VERSION)
    assert not demo_checkpoint_current(weights, DEMO_DENSITY_VERSION + ".other")
    weights.write_bytes(weights.read_bytes() + b"changed")  # no longer what it says
    assert not demo_checkpoint_current(weights)
    manifest_path(weights).unlink()
    assert not demo_checkpoint_current(weights)
    assert not demo_checkpoint_current(tmp_path / "missing.pt")
