"""The inference engine: verified loading, device choice, Grad-CAM and saliency outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.serving.checkpoint import CheckpointError
from models.serving.inference import Predictor, pick_device
from tests.support.checkpoints import untrained_checkpoint


def test_a_changed_weights_file_is_refused(tmp_path: Path) -> None:
    weights = untrained_checkpoint(tmp_path)
    with weights.open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(CheckpointError, match="does not match its manifest"):
        Predictor(weights, device="cpu")


def test_missing_manifest_is_refused(tmp_path: Path) -> None:
    weights = untrained_checkpoint(tmp_path)
    weights.with_suffix(".json").unlink()
    with pytest.raises(CheckpointError, match="manifest not found"):
        Predictor(weights, device="cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_it_is_an_error_and_auto_falls_back() -> None:
    with pytest.raises(CheckpointError, match="CUDA is not available"):
        pick_device("cuda")
    assert pick_device("auto").type == "cpu"


@pytest.mark.parametrize("heatmap", ["gradcam", "saliency"])
def test_predictions_in_batches_keep_order_and_ranges(tmp_path: Path, heatmap: str) -> None:
    weights = untrained_checkpoint(tmp_path, task="normal_benign_malignant", heatmap=heatmap)
    engine = Predictor(weights, device="cpu", batch_size=2)
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((64, 64)).astype(np.float32) for _ in range(5)]
    predictions = engine.predict(inputs)
    assert len(predictions) == 5
    for prediction in predictions:
        assert len(prediction.probabilities) == 3
        assert sum(prediction.probabilities) == pytest.approx(1.0, abs=1e-5)
        assert 0.0 <= prediction.score <= 1.0
        assert prediction.heatmap.shape == (64, 64)
        assert prediction.heatmap.min() >= 0.0 and prediction.heatmap.max() <= 1.0
    if heatmap == "gradcam":  # "malignant" is the positive class
        assert predictions[0].score == pytest.approx(predictions[0].probabilities[2], abs=1e-6)
    # batching changes nothing: one at a time gives the same answers
    single = Predictor(weights, device="cpu", batch_size=1).predict(inputs[3:4])[0]
    assert single.score == pytest.approx(predictions[3].score, abs=1e-4)
    with pytest.raises(ValueError, match="is not"):
        engine.predict([np.zeros((32, 32), dtype=np.float32)])


def test_device_preparation_matches_the_host_one(tmp_path: Path) -> None:
    """Training prepares on the host (Pillow), inference on the device (torch): the same
    geometry and nearly the same pixels, or the network would see another kind of image."""
    from models.serving.preprocess import plan, prepare
    from models.synthetic.phantoms import phantom_view

    weights = untrained_checkpoint(tmp_path, task="lesion", input_size=(128, 96))
    engine = Predictor(weights, device="cpu")
    for side in ("L", "R"):
        view = phantom_view(np.random.default_rng(3), side, "MLO", with_lesion=True)
        host, geometry = prepare(view.image, side, (128, 96))
        assert plan(view.image, side, (128, 96)) == geometry
        device = engine.prepare_on_device([view.image], [geometry]).cpu().numpy()[0, 0]
        difference = np.abs(device - host)
        correlation = float(np.corrcoef(device.ravel(), host.ravel())[0, 1])
        print(f"\n{side}: host vs device max {difference.max():.3f}, corr {correlation:.4f}")
        assert correlation > 0.99
        assert float(difference.mean()) < 0.05
