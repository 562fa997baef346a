"""The demo checkpoints in tests: the product's own, from the demo model cache that ``make run``
shares (``models.synthetic.demo_models``), trained there once per code version."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def demo_weights() -> Path:
    """The demo checkpoint (about a minute on 2 cores when the cache lacks it)."""
    from models.synthetic.demo_models import demo_checkpoint

    return demo_checkpoint("mammography")


@pytest.fixture(scope="session")
def demo_mri_weights() -> Path:
    """The demo MRI checkpoint (under a minute when the cache lacks it)."""
    from models.synthetic.demo_models import demo_checkpoint

    return demo_checkpoint("mri")


@pytest.fixture(scope="session")
def demo_density_weights() -> Path:
    """The demo density checkpoint (seconds when the cache lacks it)."""
    from models.synthetic.demo_models import demo_checkpoint

    return demo_checkpoint("density")
