"""Models in tests: the demo checkpoint (trained once per source version and cached) and
synthetic phantom studies written as MG DICOM, each with its lesion's known place."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import generate_uid

from models.phantoms import PhantomView, phantom_study, to_stored_values
from tests.helpers import REPO
from tests.synthetic import SyntheticPatient, mammogram, write

# the demo checkpoints depend on these sources only; a change retrains them
DEMO_SOURCES = ("demo.py", "phantoms.py", "networks.py", "preprocess.py", "checkpoint.py")
DEMO_MRI_SOURCES = (*DEMO_SOURCES, "demo_mri.py", "mri_phantoms.py", "sources.py", "volumes.py")
DEMO_DENSITY_SOURCES = (*DEMO_SOURCES, "demo_density.py")


def demo_source_digest(names: tuple[str, ...] = DEMO_SOURCES) -> str:
    digest = hashlib.sha256()
    for name in names:
        digest.update((REPO / "models" / name).read_bytes())
    return digest.hexdigest()[:16]


def cached_checkpoint(
    request: pytest.FixtureRequest, key: str, name: str, make: Callable[[Path], object]
) -> Path:
    """A checkpoint made once and kept in pytest's cache under ``key``."""
    from models.serving.checkpoint import read_verified

    weights = request.config.cache.mkdir(key) / name
    if weights.is_file():
        try:
            read_verified(weights)
            return weights
        except Exception:  # a broken cache entry is rebuilt
            weights.unlink()
    make(weights)
    return weights


@pytest.fixture(scope="session")
def demo_weights(request: pytest.FixtureRequest) -> Path:
    """The demo checkpoint, trained by the product's own code (about a minute on 2 cores)."""
    from models.demo import make_demo_checkpoint

    key = f"demo-model-{demo_source_digest()}"
    return cached_checkpoint(request, key, "demo.pt", make_demo_checkpoint)


@pytest.fixture(scope="session")
def demo_mri_weights(request: pytest.FixtureRequest) -> Path:
    """The demo MRI checkpoint, trained by the product's own code (under a minute)."""
    from models.demo_mri import make_demo_mri_checkpoint

    key = f"demo-mri-model-{demo_source_digest(DEMO_MRI_SOURCES)}"
    return cached_checkpoint(request, key, "demo-mri.pt", make_demo_mri_checkpoint)


@pytest.fixture(scope="session")
def demo_density_weights(request: pytest.FixtureRequest) -> Path:
    """The demo density checkpoint, trained by the product's own code (seconds)."""
    from models.demo_density import make_demo_density_checkpoint

    key = f"demo-density-model-{demo_source_digest(DEMO_DENSITY_SOURCES)}"
    return cached_checkpoint(request, key, "demo-density.pt", make_demo_density_checkpoint)


@dataclass(frozen=True)
class PhantomCase:
    study_uid: str
    lesion_side: str | None
    views: tuple[PhantomView, ...]
    paths: tuple[Path, ...]  # one file per view, same order
    sop_instance_uids: tuple[str, ...]


def phantom_dicom_study(
    rng: np.random.Generator,
    lesion_side: str | None,
    folder: Path,
    patient: SyntheticPatient | None = None,
) -> PhantomCase:
    """Four MG views (R CC, R MLO, L CC, L MLO) of a phantom, the lesion in both views of
    ``lesion_side``; right views are stored mirrored, as a unit displays them."""
    patient = patient or SyntheticPatient()
    study_uid = generate_uid()
    views = tuple(phantom_study(rng, lesion_side))
    paths, uids = [], []
    for number, view in enumerate(views, start=1):
        ds = mammogram(
            patient,
            study_uid=study_uid,
            laterality=view.laterality,
            view=view.view,
            rows=view.image.shape[0],
            columns=view.image.shape[1],
        )
        ds.PixelData = to_stored_values(view.image, bits=14).tobytes()
        ds.PixelSpacing = [view.pixel_spacing_mm, view.pixel_spacing_mm]
        ds.ImagerPixelSpacing = [view.pixel_spacing_mm, view.pixel_spacing_mm]
        ds.InstanceNumber = number
        paths.append(write(ds, folder))
        uids.append(str(ds.SOPInstanceUID))
    return PhantomCase(study_uid, lesion_side, views, tuple(paths), tuple(uids))
