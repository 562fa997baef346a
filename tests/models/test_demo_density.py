"""The demo density checkpoint reads the composition of phantoms it has not seen: fresh views
(another seed than training) of each BI-RADS composition, both sides and views, at pixel
counts in and beyond its training's, some with a lesion, through the engine's own placing
(as the node runs it). Accuracy and the confusion matrix printed; a bar asserted."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.serving.checkpoint import read_verified
from models.serving.inference import Predictor
from models.serving.preprocess import plan
from models.serving.result import COMPOSITIONS
from models.synthetic.demo_density import DEMO_DENSITY_NAME, DEMO_DENSITY_VERSION
from models.synthetic.phantoms import DETECTOR_MM, phantom_view

VIEWS = 40  # ten of each composition
ROWS = (256, 512, 1024)


def test_demo_density_model_reads_the_composition_of_fresh_phantoms(
    demo_density_weights: Path,
) -> None:
    manifest = read_verified(demo_density_weights)
    assert (manifest.name, manifest.version) == (DEMO_DENSITY_NAME, DEMO_DENSITY_VERSION)
    assert manifest.task == "density" and tuple(manifest.labels) == COMPOSITIONS
    assert manifest.validated_for_clinical_use is False and manifest.extra["demo"] is True
    assert manifest.training_data.startswith("DEMO ONLY")
    print(f"demo density training: {manifest.extra['training_seconds']} s")
    engine = Predictor(demo_density_weights, device="cpu")
    rng = np.random.default_rng(777)  # training draws from DemoTraining.seed
    confusion = np.zeros((len(COMPOSITIONS), len(COMPOSITIONS)), dtype=int)
    for n in range(VIEWS):
        truth = n % len(COMPOSITIONS)
        side, view = ("L", "R")[(n // 4) % 2], ("CC", "MLO")[(n // 8) % 2]
        rows = ROWS[n % len(ROWS)]
        shape = (rows, round(rows * DETECTOR_MM[1] / DETECTOR_MM[0]))
        phantom = phantom_view(
            rng, side, view, shape, with_lesion=n % 5 == 0, composition=COMPOSITIONS[truth]
        )
        geometry = plan(phantom.image, side, engine.working_size)
        [prediction] = engine.predict_images([phantom.image], [geometry])
        confusion[truth, int(np.argmax(prediction.probabilities))] += 1
    accuracy = float(np.trace(confusion)) / VIEWS
    print(f"demo density accuracy on {VIEWS} fresh views: {accuracy:.3f}")
    print(f"confusion (rows truth a-d, columns predicted a-d):\n{confusion}")
    assert accuracy >= 0.75
    # wrong answers are the neighbouring category, never two apart
    assert all(confusion[t, p] == 0 for t in range(4) for p in range(4) if abs(t - p) > 1)
