"""The networks: every manifest backbone builds offline, classifies, and gives a heatmap."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from models.serving.networks import BACKBONES, BreastClassifier, grad_cam
from tests.support.helpers import REPO


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_backbones_build_without_downloads_and_give_heatmaps(backbone: str) -> None:
    torch.manual_seed(0)
    model = BreastClassifier(backbone, classes=3, saliency_head=True).eval()
    size = (299, 299) if backbone == "inception_v3" else (128, 96)
    images = torch.randn(2, 1, *size)
    with torch.no_grad():
        outputs = model(images)
    assert outputs.logits.shape == (2, 3)
    assert outputs.saliency is not None and outputs.saliency.shape[:2] == (2, 1)
    cam = grad_cam(model, images, target=2)
    assert cam.shape == (2, *size)
    assert torch.isfinite(cam).all()
    assert float(cam.min()) >= 0.0 and float(cam.max()) <= 1.0 + 1e-5
    peaks = cam.amax(dim=(1, 2))
    # an image with any positive evidence is scaled so its strongest point is 1
    assert all(p == pytest.approx(1.0, abs=1e-5) or p < 1e-3 for p in peaks.tolist())


def test_the_receiving_path_never_imports_torch() -> None:
    code = (
        "import sys, node.cli, node.runtime.supervisor, node.dicom.scp, storage.index; "
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, check=False, timeout=120)
    assert result.returncode == 0, "torch was imported by the CLI, SCP or storage"
