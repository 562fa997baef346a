"""The demo density checkpoint: BI-RADS breast composition (a-d) learnt from phantoms.

Like the other demo models it exists so that a fresh node reports each breast's composition
end to end without patient data or downloads, and it is not a clinical model: its manifest
says it is not validated, so every object made with it says NOT FOR CLINICAL USE. What it
learns is the phantoms' composition (``models.synthetic.phantoms``: the share of the breast that is
fibroglandular tissue), not a radiologist's reading of a real mammogram.

Network: ResNet18 without a saliency head at a small working size (composition is a
property of the whole breast, centimetres across, so a coarse grid sees it and trains in
seconds on the CPU). Training: views of each composition in turn, both sides and views, at a
few pixel counts, a quarter with a lesion (a lesion is not dense tissue); cross-entropy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from models.serving.checkpoint import TASKS, Manifest
from models.serving.networks import BreastClassifier
from models.serving.preprocess import prepare
from models.serving.result import COMPOSITIONS
from models.synthetic.demo import DemoTraining, TrainingSet, train_demo
from models.synthetic.phantoms import DETECTOR_MM, phantom_view

DEMO_DENSITY_NAME = "breastnode-demo-density-phantom"
# a checkpoint of another version learnt other phantoms and is trained again by
# ``init-demo --if-missing`` (``models.synthetic.demo.demo_checkpoint_current``)
DEMO_DENSITY_VERSION = "1.1.0"
DEMO_DENSITY_TASK = "density"
DEMO_DENSITY_WORKING_SIZE = (64, 48)
DEMO_DENSITY_BACKBONE = "resnet18"
# the phantoms' pixel counts in training (rows; columns keep the detector's aspect ratio)
DENSITY_TRAINING_ROWS = (192, 320, 448)
DEMO_DENSITY_TRAINING = DemoTraining(views=320, epochs=9, batch_size=32, learning_rate=2e-3)


def density_training_set(rng: np.random.Generator, count: int) -> TrainingSet:
    """``count`` phantom views: compositions a, b, c, d in turn, both sides and views."""
    inputs, labels = [], []
    for n in range(count):
        composition = COMPOSITIONS[n % len(COMPOSITIONS)]
        side, view = ("L", "R")[(n // 4) % 2], ("CC", "MLO")[(n // 8) % 2]
        rows = DENSITY_TRAINING_ROWS[(n // 16) % len(DENSITY_TRAINING_ROWS)]
        shape = (rows, round(rows * DETECTOR_MM[1] / DETECTOR_MM[0]))
        phantom = phantom_view(
            rng, side, view, shape, with_lesion=(n // 4) % 4 == 3, composition=composition
        )
        model_input, _ = prepare(phantom.image, side, DEMO_DENSITY_WORKING_SIZE)
        inputs.append(model_input)
        labels.append(COMPOSITIONS.index(composition))
    return TrainingSet(np.stack(inputs), np.asarray(labels))


def demo_density_network() -> BreastClassifier:
    return BreastClassifier(DEMO_DENSITY_BACKBONE, classes=len(COMPOSITIONS))


def train_demo_density_checkpoint(
    weights: Path, settings: DemoTraining = DEMO_DENSITY_TRAINING
) -> Manifest:
    """Train the demo density network and write ``weights`` with its manifest beside it."""
    training_data = (
        f"DEMO ONLY: {settings.views} synthetic phantom views (models.synthetic.phantoms, "
        f"seed {settings.seed}), a quarter of each BI-RADS composition a-d drawn as a share "
        "of fibroglandular tissue; no patient data, no radiologist's reading"
    )

    def manifest(sha256: str, record: dict[str, Any]) -> Manifest:
        return Manifest(
            name=DEMO_DENSITY_NAME,
            version=DEMO_DENSITY_VERSION,
            task=DEMO_DENSITY_TASK,
            labels=TASKS[DEMO_DENSITY_TASK],
            backbone=DEMO_DENSITY_BACKBONE,
            input_size=DEMO_DENSITY_WORKING_SIZE,
            operating_threshold=0.5,  # the score is P(c) + P(d): dense; the report uses a-d
            sha256=sha256,
            validated_for_clinical_use=False,
            training_data=training_data,
            extra=record,
        )

    return train_demo(weights, settings, density_training_set, demo_density_network, manifest)
