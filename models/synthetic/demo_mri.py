"""The demo breast MRI checkpoint: the demo network trained on synthetic DCE phantoms.

Like the mammography demo it exists so that a fresh node analyses a breast MRI study end to
end without patient data or downloads, and it is not a clinical model: its manifest says it
is not validated, so every object made from it says NOT FOR CLINICAL USE.

The training images are made as the node makes them from a stored study: the first
post-contrast phase minus the pre-contrast phase, projected by maximum intensity
(``models.serving.volumes.dce_projection``), scaled by
``models.serving.sources.percentile_scaled`` and placed uncropped in the working grid. Half
the studies carry an enhancing lesion, in either breast; the saliency target is a Gaussian
at the lesion.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.serving.checkpoint import Manifest
from models.serving.preprocess import prepare
from models.serving.sources import percentile_scaled
from models.serving.volumes import dce_projection
from models.synthetic.demo import (
    DemoTraining,
    TrainingSet,
    demo_network,
    lesion_manifest,
    saliency_target,
    train_demo,
)
from models.synthetic.mri_phantoms import DcePhantom, dce_phantom

DEMO_MRI_NAME = "breastnode-demo-mri-phantom"
DEMO_MRI_WORKING_SIZE = (128, 128)
DEMO_MRI_TRAINING = DemoTraining(views=320)


def projection(phantom: DcePhantom) -> np.ndarray:
    """The image the node analyses for this phantom: the scaled DCE subtraction MIP."""
    return percentile_scaled(dce_projection(phantom.phases[0], phantom.phases[1]))


def mri_training_set(rng: np.random.Generator, count: int) -> TrainingSet:
    """``count`` projections: a lesion in the right breast, none, the left, none, ..."""
    inputs, labels, targets = [], [], []
    for n in range(count):
        side = ("R", None, "L", None)[n % 4]
        phantom = dce_phantom(rng, side, shape=(16, *DEMO_MRI_WORKING_SIZE))
        model_input, geometry = prepare(
            projection(phantom), None, DEMO_MRI_WORKING_SIZE, crop=False
        )
        inputs.append(model_input)
        labels.append(int(side is not None))
        targets.append(saliency_target(phantom.lesion, geometry, DEMO_MRI_WORKING_SIZE))
    return TrainingSet(np.stack(inputs), np.asarray(labels), np.stack(targets))


def train_demo_mri_checkpoint(
    weights: Path, settings: DemoTraining = DEMO_MRI_TRAINING
) -> Manifest:
    """Train the demo MRI network and write ``weights`` with its manifest beside it."""
    training_data = (
        f"DEMO ONLY: {settings.views} synthetic DCE breast MRI phantoms "
        f"(models.synthetic.mri_phantoms, seed {settings.seed}), half with an enhancing "
        "lesion; no patient data"
    )
    return train_demo(
        weights,
        settings,
        mri_training_set,
        demo_network,
        lesion_manifest(DEMO_MRI_NAME, DEMO_MRI_WORKING_SIZE, training_data),
    )
