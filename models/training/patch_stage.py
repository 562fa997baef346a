"""The patch stage: a lesion-vs-tissue patch classifier whose backbone then starts the
whole-image model (Shen et al. 2019's recipe, at the whole-image model's own pixel scale).

A whole-image label says only that something, somewhere, is abnormal; a patch centred on an
annotated lesion says what it looks like. The backbone first learns that from patches of
the placed training images (the model grid, so its filters see lesions at the size the
whole-image model will): lesion patches centred on random pixels of each lesion (so a large
lesion gives varied views of itself) against patches of normal tissue, drawn from inside the
breast, never the background or the padding, and never touching a lesion. Half of each
epoch's normal patches are hard negatives: of a pool twice as large, the ones the current
network scores highest. The epoch is kept by the patch AUC (lesion against tissue) on the
validation images. When the annotations carry lesion types, a lesion patch's class is its
type (tissue, mass, calcification, ...), as Shen et al.'s patch classes were, so the
backbone also learns what tells the types apart before the type head reads it.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from sklearn import metrics as skm
from torch import nn

from models.serving.inference import autocast_for
from models.serving.networks import BreastClassifier
from models.serving.result import LESION_TYPES
from models.training.training_data import PlacedSet

logger = logging.getLogger(__name__)

TISSUE = 0.1  # display value above which a pixel is breast, not background
INSIDE = 0.6  # least fraction of a normal patch that must be breast


@dataclass(frozen=True)
class PatchSettings:
    epochs: int = 8
    size: int = 48  # pixels of the model grid, a square
    per_lesion_image: int = 8  # lesion patches drawn from each annotated image per epoch
    normal_per_image: int = 4  # normal tissue patches per image per epoch
    batch_size: int = 64
    learning_rate: float = 1e-3


@dataclass(frozen=True)
class PatchStage:
    backbone: dict[str, torch.Tensor]  # the best epoch's backbone state
    history: list[dict[str, float]]  # per epoch: loss, validation patch AUC, seconds
    best_epoch: int


class PatchSource:
    """Where patches may be centred in each placed image: lesion pixels, and breast pixels
    whose patch keeps clear of every lesion and is mostly breast."""

    def __init__(self, placed: PlacedSet, size: int, lesion_types: Sequence[str] = ()) -> None:
        if placed.masks is None:
            raise ValueError("the patch stage needs lesion annotations")
        if lesion_types and placed.types is None:
            raise ValueError("lesion types asked for, but no annotation has a type")
        self.placed, self.size = placed, size
        half = size // 2
        rows, columns = placed.images.shape[1:]
        self.lesion: list[np.ndarray] = []
        self.lesion_class: list[np.ndarray] = []  # per lesion pixel: 1, or 1 + its type
        self.normal: list[np.ndarray] = []
        codes = [LESION_TYPES.index(name) + 1 for name in lesion_types]
        for n in range(len(placed.labels)):
            image = placed.images[n].astype(np.float32)
            mask = placed.masks[n].astype(bool)
            pixels = np.argwhere(mask)
            classes = np.ones(len(pixels), dtype=np.int64)
            if codes:  # typed pixels only, each of its type's class
                assert placed.types is not None
                typed = placed.types[n][pixels[:, 0], pixels[:, 1]]
                known = np.isin(typed, codes)
                pixels = pixels[known]
                classes = np.array([codes.index(int(t)) + 1 for t in typed[known]], np.int64)
            self.lesion.append(pixels)
            self.lesion_class.append(classes)
            breast = image > TISSUE
            near = _dilated(mask, half) if mask.any() else np.zeros_like(mask)
            fraction = _box_mean(breast.astype(np.float32), half)
            allowed = breast & ~near & (fraction >= INSIDE)
            allowed[:half], allowed[rows - half :] = False, False
            allowed[:, :half], allowed[:, columns - half :] = False, False
            self.normal.append(np.argwhere(allowed))

    def crop(self, index: int, centre: np.ndarray) -> np.ndarray:
        """The patch (size x size) around ``centre`` (row, column), zero beyond the grid."""
        half, size = self.size // 2, self.size
        image = self.placed.images[index]
        padded = np.pad(image.astype(np.float32), half)
        rows, columns = image.shape
        row = min(max(int(centre[0]), 0), rows - 1)  # a jittered centre stays on the grid
        column = min(max(int(centre[1]), 0), columns - 1)
        return padded[row : row + size, column : column + size]

    def draw(
        self, rng: np.random.Generator, lesion_images: int, normal_images: int
    ) -> tuple[list[np.ndarray], list[np.ndarray], list[int]]:
        """An epoch's lesion patches, normal candidates (before hard-negative choice) and
        the lesion patches' classes."""
        lesions, normals, classes = [], [], []
        for n, pixels in enumerate(self.lesion):
            for _ in range(lesion_images if len(pixels) else 0):
                pick = int(rng.integers(len(pixels)))
                centre = pixels[pick] + rng.integers(-2, 3, size=2)
                lesions.append(self.crop(n, centre))
                classes.append(int(self.lesion_class[n][pick]))
        for n, pixels in enumerate(self.normal):
            for _ in range(normal_images if len(pixels) else 0):
                normals.append(self.crop(n, pixels[rng.integers(len(pixels))]))
        return lesions, normals, classes


def train_patch_stage(
    network: BreastClassifier,
    training: PlacedSet,
    validation: PlacedSet,
    settings: PatchSettings,
    device: torch.device,
    seed: int = 0,
    lesion_types: Sequence[str] = (),
) -> PatchStage | None:
    """Train ``network``'s backbone on patches with a two-class head of its own; the best
    epoch's backbone state back (the network's own head and saliency head are untouched).
    None, with a warning, where the images give no lesion or no clear tissue to sample (a
    working size hardly larger than the patch, a breast filled by its lesion)."""
    rng = np.random.default_rng(seed)
    source = PatchSource(training, settings.size, lesion_types)
    lesion_images = sum(1 for pixels in source.lesion if len(pixels))
    tissue_images = sum(1 for pixels in source.normal if len(pixels))
    if lesion_images == 0 or tissue_images == 0:
        logger.warning(
            "patch stage skipped: %d images give lesion patches and %d normal tissue patches "
            "of %d pixels",
            lesion_images,
            tissue_images,
            settings.size,
        )
        return None
    held_out = (
        PatchSource(validation, settings.size)  # judged as lesion against tissue
        if validation.masks is not None
        else None
    )
    check = _fixed_patches(held_out, np.random.default_rng(seed + 1)) if held_out else None
    channels = _features_channels(network, settings.size, device)
    classes = 1 + max(1, len(lesion_types))
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes)).to(
        device
    )
    parameters = list(network.backbone.parameters()) + list(head.parameters())
    optimiser = torch.optim.AdamW(parameters, lr=settings.learning_rate, weight_decay=1e-4)
    history: list[dict[str, float]] = []
    best_auc, best_state, best_epoch = -1.0, copy.deepcopy(network.backbone.state_dict()), 0
    for epoch in range(1, settings.epochs + 1):
        started = time.monotonic()
        lesions, candidates, lesion_classes = source.draw(
            rng, settings.per_lesion_image, 2 * settings.normal_per_image
        )
        normals = _hard_negatives(network, head, candidates, device, rng, settings.batch_size)
        patches = np.stack(lesions + normals)
        labels = np.array(lesion_classes + [0] * len(normals))
        loss = _patch_epoch(network, head, optimiser, patches, labels, device, rng, settings)
        auc = _patch_auc(network, head, check, device, settings.batch_size) if check else loss
        history.append(
            {
                "epoch": epoch,
                "loss": round(loss, 5),
                "patches": len(labels),
                "validation_patch_auc": round(auc, 4),
                "seconds": round(time.monotonic() - started, 1),
            }
        )
        logger.info(
            "patch epoch %d: %d patches, loss %.4f, validation patch AUC %.3f",
            epoch,
            len(labels),
            loss,
            auc,
        )
        if auc > best_auc:
            best_auc, best_epoch = auc, epoch
            best_state = copy.deepcopy(network.backbone.state_dict())
    return PatchStage(best_state, history, best_epoch)


def _features(network: BreastClassifier, patches: torch.Tensor) -> torch.Tensor:
    features: torch.Tensor = network.backbone(patches.expand(-1, 3, -1, -1))
    return features


def _features_channels(network: BreastClassifier, size: int, device: torch.device) -> int:
    was_training = network.training
    network.eval()
    with torch.no_grad():
        probe = _features(network, torch.zeros(1, 1, size, size, device=device))
    network.train(was_training)
    return int(probe.shape[1])


def _standardised(patches: np.ndarray) -> torch.Tensor:
    """Each patch to zero mean and unit spread, as whole images are (one channel)."""
    tensor = torch.from_numpy(np.ascontiguousarray(patches, dtype=np.float32))[:, None]
    mean = tensor.mean(dim=(2, 3), keepdim=True)
    spread = tensor.std(dim=(2, 3), keepdim=True, unbiased=False).clamp_min(1e-3)
    return (tensor - mean) / spread


def _augmented(patches: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Flips and quarter turns: a patch has no up or chest-wall side of its own."""
    turns = int(rng.integers(4))
    patches = torch.rot90(patches, turns, dims=(2, 3))
    if rng.random() < 0.5:
        patches = patches.flip(3)
    return patches


def _scores(
    network: BreastClassifier,
    head: nn.Module,
    patches: np.ndarray,
    device: torch.device,
    batch_size: int,
) -> np.ndarray:
    network.eval()
    head.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(patches), batch_size):
            batch = _standardised(patches[start : start + batch_size]).to(device)
            with autocast_for(device):
                logits = head(_features(network, batch)).float()
            out.append(1 - torch.softmax(logits, dim=1)[:, 0].cpu().numpy())  # any lesion
    return np.concatenate(out)


def _hard_negatives(
    network: BreastClassifier,
    head: nn.Module,
    candidates: list[np.ndarray],
    device: torch.device,
    rng: np.random.Generator,
    batch_size: int,
) -> list[np.ndarray]:
    """Half the candidates: the hardest half of them (highest lesion score) together with a
    random draw from the rest, so the easy majority of tissue is not forgotten."""
    keep = len(candidates) // 2
    scores = _scores(network, head, np.stack(candidates), device, batch_size)
    order = np.argsort(-scores, kind="stable")
    hard, rest = order[: keep // 2], order[keep // 2 :]
    chosen = np.concatenate([hard, rng.choice(rest, size=keep - len(hard), replace=False)])
    return [candidates[int(n)] for n in chosen]


def _patch_epoch(
    network: BreastClassifier,
    head: nn.Module,
    optimiser: torch.optim.Optimizer,
    patches: np.ndarray,
    labels: np.ndarray,
    device: torch.device,
    rng: np.random.Generator,
    settings: PatchSettings,
) -> float:
    network.train()
    head.train()
    classes = int(cast(nn.Linear, cast(nn.Sequential, head)[-1]).out_features)
    counts = np.bincount(labels, minlength=classes)
    weights = torch.tensor(
        len(labels) / (len(counts) * np.maximum(counts, 1)), dtype=torch.float32
    ).to(device)
    criterion = nn.CrossEntropyLoss(weight=weights)
    order = rng.permutation(len(labels))
    total = 0.0
    for start in range(0, len(order), settings.batch_size):
        chosen = order[start : start + settings.batch_size]
        if len(chosen) < 2:
            continue
        batch = _augmented(_standardised(patches[chosen]), rng).to(device)
        target = torch.from_numpy(labels[chosen]).to(device)
        with autocast_for(device):
            loss = criterion(head(_features(network, batch)).float(), target)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        total += float(loss.detach()) * len(chosen)
    return total / max(len(order), 1)


def _fixed_patches(
    source: PatchSource, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray] | None:
    """The validation patches, drawn once so every epoch is judged on the same ones."""
    lesions, normals, _ = source.draw(rng, 4, 4)
    if not lesions or not normals:
        return None
    return np.stack(lesions + normals), np.array([1] * len(lesions) + [0] * len(normals))


def _patch_auc(
    network: BreastClassifier,
    head: nn.Module,
    check: tuple[np.ndarray, np.ndarray],
    device: torch.device,
    batch_size: int,
) -> float:
    patches, labels = check
    return float(skm.roc_auc_score(labels, _scores(network, head, patches, device, batch_size)))


def _dilated(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` grown by ``radius`` pixels (a square), through a summed-area table."""
    return _box_mean(mask.astype(np.float32), radius) > 0


def _box_mean(values: np.ndarray, radius: int) -> np.ndarray:
    """The mean of ``values`` over the (2 radius + 1)-square around each pixel (edges padded
    with zeros), in constant time a pixel."""
    padded = np.pad(values, radius + 1)
    table = padded.cumsum(0).cumsum(1)
    side = 2 * radius + 1
    rows, columns = values.shape
    total = (
        table[side : side + rows, side : side + columns]
        - table[:rows, side : side + columns]
        - table[side : side + rows, :columns]
        + table[:rows, :columns]
    )
    result: np.ndarray = total / side**2
    return result
