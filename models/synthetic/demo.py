"""The demo checkpoint: a small network trained in minutes on the CPU on synthetic phantoms.

It exists so that a fresh node produces real, located results end to end without any
patient data or download. It is not a clinical model: its manifest says it is not validated,
so every object made from it says NOT FOR CLINICAL USE.

Network: ResNet18 at 128 x 96 with a saliency head after ``layer1`` (a 32 x 24 grid, about
8 mm per cell on a phantom breast cropped into the grid, fine enough to place a 5-15 mm
lesion within millimetres). Training: half the views carry a lesion; the loss is the view's
cross-entropy plus the saliency map's binary cross-entropy against a Gaussian at the lesion
(zero for views without one), so the network learns both whether and where.

The phantoms are drawn in millimetres on the full-field detector (``models.synthetic.phantoms``), as
``breastnode sample-study`` writes them, at a few pixel counts: the network sees the breast
crop resized to its grid, so what it learns carries over to any image size.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from models.serving.checkpoint import (
    TASKS,
    CheckpointError,
    Manifest,
    file_sha256,
    read_verified,
    write_manifest,
)
from models.serving.networks import BreastClassifier, saliency_loss
from models.serving.preprocess import Geometry, prepare
from models.serving.result import Point
from models.synthetic.phantoms import DETECTOR_MM, phantom_view

logger = logging.getLogger(__name__)

DEMO_NAME = "breastnode-demo-phantom"
# 2.0.0: trained on physical-scale phantoms (a breast and lesion in millimetres) with the
# saliency head after layer1; an older demo checkpoint is retrained (``demo_checkpoint_current``)
DEMO_VERSION = "2.0.0"
DEMO_WORKING_SIZE = (128, 96)
DEMO_BACKBONE = "resnet18"
DEMO_SALIENCY_TAP = 5  # conv1, bn1, relu, maxpool, layer1
# the phantoms' pixel counts in training (rows; columns keep the detector's aspect ratio)
TRAINING_ROWS = (320, 448, 640)
DEMO_THRESHOLD = 0.5


@dataclass(frozen=True)
class DemoTraining:
    views: int = 640
    epochs: int = 8
    batch_size: int = 32
    learning_rate: float = 1e-3
    saliency_weight: float = 2.0
    seed: int = 20261121


@dataclass(frozen=True)
class TrainingSet:
    inputs: np.ndarray  # (n, rows, columns) model inputs
    labels: np.ndarray  # (n,) class indices (here 0 no lesion, 1 lesion)
    # (n, rows, columns) wanted saliency in the model grid, [0, 1]; None for a network
    # without a saliency head (the demo density model)
    targets: np.ndarray | None = None


def phantom_training_set(rng: np.random.Generator, count: int) -> TrainingSet:
    """``count`` phantom views, alternately with and without a lesion, both sides and views."""
    inputs, labels, targets = [], [], []
    for n in range(count):
        side, view = ("L", "R")[n % 2], ("CC", "MLO")[(n // 2) % 2]
        with_lesion = (n // 4) % 2 == 0
        rows = TRAINING_ROWS[(n // 8) % len(TRAINING_ROWS)]
        shape = (rows, round(rows * DETECTOR_MM[1] / DETECTOR_MM[0]))
        phantom = phantom_view(rng, side, view, shape, with_lesion=with_lesion)
        model_input, geometry = prepare(phantom.image, side, DEMO_WORKING_SIZE)
        inputs.append(model_input)
        labels.append(int(with_lesion))
        targets.append(saliency_target(phantom.lesion, geometry, DEMO_WORKING_SIZE))
    return TrainingSet(np.stack(inputs), np.asarray(labels), np.stack(targets))


def demo_network() -> BreastClassifier:
    return BreastClassifier(
        DEMO_BACKBONE, classes=2, saliency_head=True, saliency_tap=DEMO_SALIENCY_TAP
    )


def train(network: BreastClassifier, data: TrainingSet, settings: DemoTraining) -> list[float]:
    """Adam on the joint loss (the classification alone for a network without a saliency
    head); returns the mean loss of each epoch."""
    generator = torch.Generator().manual_seed(settings.seed)
    optimiser = torch.optim.Adam(network.parameters(), lr=settings.learning_rate)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser,
        max_lr=settings.learning_rate,
        total_steps=settings.epochs * -(-len(data.labels) // settings.batch_size),
    )
    inputs = torch.from_numpy(data.inputs)[:, None]
    labels = torch.from_numpy(data.labels).long()
    targets = None if data.targets is None else torch.from_numpy(data.targets)[:, None]
    classification = nn.CrossEntropyLoss()
    history = []
    network.train()
    for epoch in range(settings.epochs):
        order = torch.randperm(len(labels), generator=generator)
        total = 0.0
        for start in range(0, len(order), settings.batch_size):
            batch = order[start : start + settings.batch_size]
            if len(batch) < 2:  # batch normalisation needs two
                continue
            outputs = network(inputs[batch])
            loss = classification(outputs.logits, labels[batch])
            if targets is not None:
                assert outputs.saliency is not None
                loss = loss + settings.saliency_weight * (
                    saliency_loss(outputs.saliency, targets[batch])
                )
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(batch)
        history.append(total / len(order))
        logger.info("demo training epoch %d/%d: loss %.4f", epoch + 1, settings.epochs, history[-1])
    network.eval()
    return history


class PlacedLesion(Protocol):
    """A phantom's lesion: where it is in the phantom's pixel grid, and how large."""

    @property
    def center(self) -> Point: ...

    @property
    def radius_px(self) -> float: ...


def saliency_target(
    lesion: PlacedLesion | None, geometry: Geometry, size: tuple[int, int]
) -> np.ndarray:
    """What the saliency head is to learn for a phantom: nothing where it has no lesion,
    else a Gaussian at the lesion in the model grid, as wide as the lesion (3 pixels or more)."""
    if lesion is None:
        return np.zeros(size, dtype=np.float32)
    sigma = max(lesion.radius_px * geometry.scale[1], 3.0)
    return lesion_target(geometry.to_model(lesion.center), sigma, size)


def lesion_target(centre: Point, sigma: float, size: tuple[int, int]) -> np.ndarray:
    """The wanted saliency: a Gaussian of ``sigma`` model pixels at ``centre``."""
    y, x = np.mgrid[0 : size[0], 0 : size[1]].astype(np.float32)
    target = np.exp(-((x - centre.column) ** 2 + (y - centre.row) ** 2) / (2 * sigma**2))
    return np.asarray(target, dtype=np.float32)


def train_demo_checkpoint(weights: Path, settings: DemoTraining = DemoTraining()) -> Manifest:
    """Train the demo network and write ``weights`` with its manifest beside it (the demo
    model cache calls this: ``models.synthetic.demo_models.make_demo_checkpoint``)."""
    training_data = (
        f"DEMO ONLY: {settings.views} synthetic phantom views (models.synthetic.phantoms, "
        f"seed {settings.seed}; drawn in millimetres on a full-field detector, "
        f"{'/'.join(map(str, TRAINING_ROWS))} rows), half with an inserted 5-15 mm lesion; "
        "no patient data"
    )
    return train_demo(
        weights,
        settings,
        phantom_training_set,
        demo_network,
        lesion_manifest(DEMO_NAME, DEMO_WORKING_SIZE, training_data),
    )


def demo_checkpoint_current(weights: Path, version: str = DEMO_VERSION) -> bool:
    """Whether ``weights`` is a verified demo checkpoint of this ``version``: one made by
    an older version learnt other phantoms and is to be trained again, not kept."""
    try:
        manifest = read_verified(weights)
    except CheckpointError:
        return False
    return manifest.version == version


def save_weights(network: nn.Module, weights: Path) -> None:
    """Write the network's weights whole or not at all (a partial file, then renamed)."""
    weights.parent.mkdir(parents=True, exist_ok=True)
    partial = weights.with_name(weights.name + ".partial")
    torch.save(network.state_dict(), partial)
    partial.replace(weights)


def train_demo(
    weights: Path,
    settings: DemoTraining,
    training_set: Callable[[np.random.Generator, int], TrainingSet],
    network: Callable[[], BreastClassifier],
    manifest: Callable[[str, dict[str, Any]], Manifest],
) -> Manifest:
    """Train a new ``network()`` on ``training_set`` drawn with the settings' seed; write the
    weights and ``manifest(sha256, demo_record)`` beside them."""
    started = time.monotonic()
    torch.manual_seed(settings.seed)
    data = training_set(np.random.default_rng(settings.seed), settings.views)
    trained = network()
    history = train(trained, data, settings)
    save_weights(trained, weights)
    made = manifest(file_sha256(weights), demo_record(settings, history, started))
    write_manifest(weights, made)
    return made


def lesion_manifest(
    name: str, input_size: tuple[int, int], training_data: str
) -> Callable[[str, dict[str, Any]], Manifest]:
    """The not-validated manifest of a demo lesion network (``demo_network``), for
    ``train_demo``."""

    def made(sha256: str, record: dict[str, Any]) -> Manifest:
        return Manifest(
            name=name,
            version=DEMO_VERSION,
            task="lesion",
            labels=TASKS["lesion"],
            backbone=DEMO_BACKBONE,
            input_size=input_size,
            operating_threshold=DEMO_THRESHOLD,
            sha256=sha256,
            validated_for_clinical_use=False,
            training_data=training_data,
            heatmap="saliency",
            extra={"saliency_tap": DEMO_SALIENCY_TAP, **record},
        )

    return made


def demo_record(settings: DemoTraining, history: list[float], started: float) -> dict[str, Any]:
    """What every demo manifest records of its training: that it is a demo, its epochs, its
    last loss and how long it took (``started``: time.monotonic() when it began)."""
    return {
        "demo": True,
        "epochs": settings.epochs,
        "final_loss": round(history[-1], 5),
        "training_seconds": round(time.monotonic() - started, 1),
    }
