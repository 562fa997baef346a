"""Transfer learning on a site's labelled images: a torchvision backbone (from a local
pretrained file when given), a dense head with batch normalisation and dropout, trained
first with the backbone frozen and then fine-tuned, stopped early on the validation AUC.
The kept network's scores are then calibrated on the validation split and the operating
threshold chosen there, on the calibrated scores, by the settings' rule
(``models.serving.calibration``).

What it writes is an ordinary node checkpoint (weights + manifest), so ``config.toml`` can
point at it directly; the manifest also carries the epoch log, the split and the settings,
and always says it is not validated for clinical use: that takes a site's own validation.

When the training rows carry lesion annotations (``PlacedSet.masks``), the network gets a
saliency head (the demo's mechanism, ``models.serving.networks.saliency_loss``) supervised by the
lesion masks jointly with the image label: positive images with annotations ask for their
lesions, images of a negative class for an empty map, positive images without annotations
add the image loss only. The checkpoint then says heatmap "saliency", so the node draws
findings from the learned localisation; without annotations it stays Grad-CAM.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn import metrics as skm
from torch import nn
from tqdm import tqdm

from models.serving.calibration import (
    Calibration,
    OperatingPoint,
    OperatingRule,
    choose_threshold,
    fit_calibration,
    operating_point,
)
from models.serving.checkpoint import TASKS, Manifest, file_sha256, write_manifest
from models.serving.inference import (
    POSITIVE_LABELS,
    autocast_for,
    pick_device,
    positive_cases,
    positive_indices,
    positive_score,
)
from models.serving.networks import (
    BreastClassifier,
    lesion_type_loss,
    load_pretrained_backbone,
    saliency_loss,
)
from models.training import recipe
from models.training.patch_stage import PatchSettings, PatchStage, train_patch_stage
from models.training.training_data import AnnotatedImages, Augmentation, PlacedSet, TrainingImages

logger = logging.getLogger(__name__)

BALANCING = ("loss", "sampler", "none")
# tasks whose positive class is about lesions: their annotations supervise a saliency head
# (a density model's classes are not located in a lesion)
LOCALISING_TASKS = tuple(task for task in TASKS if not task.startswith("density"))
# the ResNets' saliency tap, as the demo's: after layer1 (conv1, bn1, relu, maxpool,
# layer1), a stride-4 grid; stride 8 (layer2) placed phantom lesions of 4-6 model pixels'
# radius a cell off, outside their radius; other backbones tap their last stage
RESNET_SALIENCY_TAP = 5
# tasks of ordered classes, whose epoch is chosen by weighted kappa (``selection_score``)
ORDINAL_TASKS = ("density", "density_fgd", "birads")
PATCH_STAGE = "patch stage (lesion vs tissue patches of the training images)"


@dataclass(frozen=True)
class TrainingSettings:
    task: str
    backbone: str = recipe.BACKBONE
    working_size: tuple[int, int] = recipe.WORKING_SIZE  # rows, columns
    pretrained: Path | None = None  # local weights file; None trains from scratch
    frozen_epochs: int = recipe.FROZEN_EPOCHS  # head only, backbone frozen (pretrained start)
    epochs: int = recipe.EPOCHS  # most fine-tuning epochs
    patience: int = recipe.PATIENCE  # epochs without a better validation AUC before stopping
    batch_size: int = recipe.BATCH_SIZE
    learning_rate: float = recipe.LEARNING_RATE
    backbone_learning_rate: float = 1e-4  # fine-tuning rate of pretrained layers
    weight_decay: float = 1e-4
    hidden: int = 256
    dropout: float = 0.3
    balance: str = "loss"  # "loss" weights, "sampler" draws, "none"
    augment: bool = True
    seed: int = 0
    device: str = "auto"
    workers: int = 0  # DataLoader worker processes
    # Youden's J unless a target is given
    operating_point: OperatingRule = field(default_factory=OperatingRule)
    saliency_weight: float = 1.0  # of the lesion-mask loss beside the image loss
    saliency_tap: int | None = None  # None: RESNET_SALIENCY_TAP for ResNets, else the last
    # epochs of the lesion-vs-tissue patch stage before whole-image training, when the
    # training images carry annotations and no pretrained file is given (0: none)
    patch_epochs: int = recipe.PATCH_EPOCHS
    patch_size: int = recipe.PATCH_SIZE  # model-grid pixels

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; one of {', '.join(TASKS)}")
        if self.balance not in BALANCING:
            raise ValueError(f"balance must be one of {', '.join(BALANCING)}")
        if self.epochs < 1 or self.batch_size < 2 or self.patience < 1:
            raise ValueError("epochs and patience at least 1, batch_size at least 2")


@dataclass(frozen=True)
class EpochLog:
    epoch: int
    phase: str  # "frozen" or "fine-tune"
    train_loss: float
    train_accuracy: float
    validation_loss: float
    validation_accuracy: float
    validation_auc: float
    seconds: float


@dataclass
class Trained:
    network: BreastClassifier
    history: list[EpochLog]
    best_epoch: int
    threshold: float  # operating threshold chosen on the validation set (calibrated scores)
    pretrained: str | None = None  # which form of pretrained file was loaded
    stopped_early: bool = False
    device: str = "cpu"
    extra: dict[str, Any] = field(default_factory=dict)
    calibration: Calibration | None = None
    operating_point: OperatingPoint | None = None
    saliency_tap: int | None = None  # the saliency head's tap; None: no head (Grad-CAM)
    annotated_images: int = 0  # training images whose lesion annotations were used
    lesion_types: tuple[str, ...] = ()  # the type head's classes; () without one


def uses_annotations(task: str, placed: PlacedSet) -> bool:
    """Whether training on ``placed`` supervises a saliency head: some positive image of a
    lesion task carries annotations."""
    if task not in LOCALISING_TASKS or placed.masks is None or placed.annotated is None:
        return False
    return bool((placed.annotated & (positive_cases(task, placed.labels) == 1)).any())


def saliency_tap(settings: TrainingSettings) -> int | None:
    if settings.saliency_tap is not None:
        return settings.saliency_tap
    return RESNET_SALIENCY_TAP if settings.backbone.startswith("resnet") else None


def validation_auc(task: str, labels: np.ndarray, probabilities: np.ndarray) -> float:
    """ROC AUC of the node's score (positive classes vs the rest); NaN with one class."""
    positive = positive_cases(task, labels)
    if positive.min() == positive.max():
        return float("nan")
    return float(skm.roc_auc_score(positive, positive_score(task, probabilities)))


def youden_threshold(task: str, labels: np.ndarray, probabilities: np.ndarray) -> float:
    """The score threshold that maximises sensitivity + specificity on the validation set."""
    positive = positive_cases(task, labels)
    return choose_threshold(OperatingRule(), positive, positive_score(task, probabilities))


def calibrate_and_choose(
    settings: TrainingSettings,
    labels: np.ndarray,
    probabilities: np.ndarray,
    scores: np.ndarray | None = None,
) -> tuple[Calibration, OperatingPoint]:
    """The validation split's calibration, and the operating point chosen on its
    calibrated scores (the scale the engine reports). ``scores``: the engine's raw scores
    where they are not the probabilities' (a saliency head's peak is in them)."""
    positive = positive_cases(settings.task, labels)
    raw = positive_score(settings.task, probabilities) if scores is None else scores
    calibration = fit_calibration(positive, raw, seed=settings.seed)
    point = operating_point(settings.operating_point, positive, calibration.apply(raw))
    logger.info(
        "calibration: %s; operating point %s: threshold %.4f, validation sensitivity %.3f, "
        "specificity %.3f, recall rate %.3f",
        calibration.reason,
        settings.operating_point.describe(),
        point.threshold,
        point.sensitivity,
        point.specificity,
        point.recall_rate,
    )
    return calibration, point


def class_weights(labels: np.ndarray, classes: int) -> np.ndarray:
    """Inverse class frequency, scaled so a balanced set gets weight 1 everywhere."""
    counts = np.bincount(labels, minlength=classes).astype(np.float64)
    weights = np.where(counts > 0, len(labels) / (classes * np.maximum(counts, 1)), 0.0)
    return weights.astype(np.float32)


def _seed_worker(worker: int) -> None:
    info = torch.utils.data.get_worker_info()
    if info is not None and isinstance(info.dataset, TrainingImages):
        info.dataset.generator.manual_seed(info.seed % 2**63)


def train(
    settings: TrainingSettings,
    training: PlacedSet,
    validation: PlacedSet,
    progress: bool = False,
    on_epoch: Callable[[EpochLog, BreastClassifier], None] | None = None,
) -> Trained:
    """Train on ``training``, choose the epoch by ``validation`` AUC; the best network back."""
    classes = len(TASKS[settings.task])
    in_validation = positive_cases(settings.task, validation.labels)
    if in_validation.min() == in_validation.max():
        raise ValueError(
            "the validation split needs positive and negative cases "
            f"({', '.join(POSITIVE_LABELS[settings.task])} and the rest): more patients, "
            "or other --fractions"
        )
    torch.manual_seed(settings.seed)
    np.random.seed(settings.seed % 2**32)  # libraries that draw from numpy's global state
    device = pick_device(settings.device)
    localise = uses_annotations(settings.task, training)
    tap = saliency_tap(settings) if localise else None
    lesion_types = training.lesion_types() if localise else ()
    if len(lesion_types) < 2:  # one type (or none) is nothing to tell apart
        lesion_types = ()
    network = BreastClassifier(
        settings.backbone,
        classes=classes,
        hidden=settings.hidden,
        dropout=settings.dropout,
        saliency_head=localise,
        saliency_tap=tap,
        lesion_types=len(lesion_types),
    )
    if localise:
        tap = network.tap  # None (the last stage) as its index, as the manifest records it
    pretrained = (
        load_pretrained_backbone(network, settings.backbone, settings.pretrained)
        if settings.pretrained is not None
        else None
    )
    network.to(device)
    patches: PatchStage | None = None
    if localise and pretrained is None and settings.patch_epochs > 0:
        patches = train_patch_stage(
            network,
            training,
            validation,
            PatchSettings(epochs=settings.patch_epochs, size=patch_side(settings)),
            device,
            seed=settings.seed,
            lesion_types=lesion_types,
        )
        if patches is not None:
            network.backbone.load_state_dict(patches.backbone)
            pretrained = PATCH_STAGE
    weights = class_weights(training.labels, classes)
    loss_weights = torch.from_numpy(weights) if settings.balance == "loss" else None
    criterion = nn.CrossEntropyLoss(
        weight=loss_weights.to(device) if loss_weights is not None else None
    )
    loader = _training_loader(settings, training, weights, localise, lesion_types)
    joint = _JointLoss(criterion, settings.task, settings.saliency_weight) if localise else None
    phases = ([("frozen", settings.frozen_epochs)] if pretrained else []) + [
        ("fine-tune", settings.epochs)
    ]
    history: list[EpochLog] = []
    best_rank, best_loss, best_state, best_epoch = -1.0, 0.0, None, 0
    best_probabilities: np.ndarray | None = None
    best_scores: np.ndarray | None = None
    stopped_early = False
    epochs_total = sum(n for _, n in phases)
    bar = tqdm(total=epochs_total, desc="epochs", unit="epoch", disable=not progress)
    for phase, epochs in phases:
        # a pretrained file's layers fine-tune slowly; the patch stage's own, at full rate
        slow = settings.pretrained is not None
        optimiser, schedule = _optimiser(settings, network, phase, epochs, slow)
        since_best = 0
        for _ in range(epochs):
            started = time.monotonic()
            train_loss, train_accuracy = _train_epoch(
                network, loader, joint or criterion, optimiser, device, phase, progress
            )
            schedule.step()
            probabilities, validation_loss, scores = predict_scores(
                network, validation, device, settings.task, criterion
            )
            auc = score_auc(settings.task, validation.labels, scores)
            accuracy = float((probabilities.argmax(axis=1) == validation.labels).mean())
            log = EpochLog(
                len(history) + 1,
                phase,
                round(train_loss, 5),
                round(train_accuracy, 4),
                round(validation_loss, 5),
                round(accuracy, 4),
                round(auc, 4),
                round(time.monotonic() - started, 1),
            )
            history.append(log)
            logger.info(
                "epoch %d (%s): loss %.4f, accuracy %.3f; validation loss %.4f, accuracy %.3f, "
                "AUC %.3f",
                log.epoch,
                phase,
                log.train_loss,
                log.train_accuracy,
                log.validation_loss,
                log.validation_accuracy,
                log.validation_auc,
            )
            if on_epoch is not None:
                on_epoch(log, network)
            bar.update(1)
            bar.set_postfix(loss=f"{train_loss:.3f}", val_auc=f"{auc:.3f}")
            # the best AUC; among equal AUCs, the lower validation loss
            ranked = selection_score(settings.task, validation.labels, probabilities, auc)
            if best_state is None or (ranked, -validation_loss) > (best_rank, -best_loss):
                best_rank, best_loss, best_epoch = ranked, validation_loss, log.epoch
                best_state = copy.deepcopy(network.state_dict())
                best_probabilities, best_scores = probabilities, scores
                since_best = 0
            else:
                since_best += 1
                if phase == "fine-tune" and since_best >= settings.patience:
                    stopped_early = True
                    break
    bar.close()
    assert best_state is not None and best_probabilities is not None
    network.load_state_dict(best_state)
    network.eval()
    calibration, point = calibrate_and_choose(
        settings, validation.labels, best_probabilities, best_scores
    )
    return Trained(
        network=network,
        history=history,
        best_epoch=best_epoch,
        threshold=point.threshold,
        pretrained=pretrained,
        stopped_early=stopped_early,
        device=str(device),
        calibration=calibration,
        operating_point=point,
        saliency_tap=tap,
        annotated_images=int(training.annotated.sum())
        if localise and training.annotated is not None
        else 0,
        lesion_types=lesion_types,
        extra=(
            {"patch_stage": {"best_epoch": patches.best_epoch, "history": patches.history}}
            if patches is not None
            else {}
        ),
    )


def patch_side(settings: TrainingSettings) -> int:
    """The patch stage's patch side: the settings', but at most a third of the working
    size's shorter side, so a small working size still leaves room for tissue patches."""
    return max(8, min(settings.patch_size, min(settings.working_size) // 3))


def selection_score(task: str, labels: np.ndarray, probabilities: np.ndarray, auc: float) -> float:
    """What chooses the kept epoch: the validation ROC AUC of the node's score, except for
    ordered classes (density, BI-RADS), whose validation quadratic-weighted kappa of the
    predicted class is what their report leads with: a density model's dense-vs-rest AUC
    says little about telling fatty from scattered. -1 where it cannot be computed (one
    class): the validation loss then decides."""
    if task in ORDINAL_TASKS:
        predicted = probabilities.argmax(axis=1)
        if np.unique(np.concatenate([labels, predicted])).size < 2:
            return -1.0
        return float(skm.cohen_kappa_score(labels, predicted, weights="quadratic"))
    return -1.0 if np.isnan(auc) else auc


def score_auc(task: str, labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC of the node's scores (positive classes vs the rest); NaN with one class."""
    positive = positive_cases(task, labels)
    if positive.min() == positive.max():
        return float("nan")
    return float(skm.roc_auc_score(positive, scores))


class _JointLoss(nn.Module):
    """The image loss plus the saliency map's against the lesion masks: a positive image
    asks for its annotated lesions, a negative one for an empty map, and a positive image
    without annotations is left out of the map's loss (where its lesion is is unknown).
    With a type head, every typed lesion (a benign mass is a mass too) teaches its type."""

    def __init__(self, image_loss: nn.Module, task: str, weight: float) -> None:
        super().__init__()
        self.image_loss = image_loss
        self.positive = positive_indices(task)
        self.weight = weight

    def forward(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        saliency: torch.Tensor,
        masks: torch.Tensor,
        annotated: torch.Tensor,
        lesion_types: torch.Tensor | None = None,
    ) -> torch.Tensor:
        positive = torch.isin(labels, torch.tensor(self.positive, device=labels.device))
        wanted = masks[:, :1] * positive[:, None, None, None].to(masks.dtype)
        supervised = annotated | ~positive
        image: torch.Tensor = self.image_loss(logits.float(), labels)
        loss = image + self.weight * saliency_loss(saliency, wanted, supervised, balanced=True)
        if lesion_types is not None:
            loss = loss + self.weight * lesion_type_loss(lesion_types, masks[:, 1:])
        return loss


def _training_loader(
    settings: TrainingSettings,
    training: PlacedSet,
    weights: np.ndarray,
    localise: bool = False,
    lesion_types: Sequence[str] = (),
) -> torch.utils.data.DataLoader[Any]:
    augmentation = Augmentation() if settings.augment else None
    images: TrainingImages = (
        AnnotatedImages(training, augmentation, seed=settings.seed, lesion_types=lesion_types)
        if localise
        else TrainingImages(training, augmentation, seed=settings.seed)
    )
    generator = torch.Generator().manual_seed(settings.seed)
    sampler = None
    if settings.balance == "sampler":
        sampler = torch.utils.data.WeightedRandomSampler(
            weights[training.labels].astype(float).tolist(),
            num_samples=len(training.labels),
            replacement=True,
            generator=generator,
        )
    return torch.utils.data.DataLoader(
        images,
        batch_size=settings.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        generator=generator,
        num_workers=settings.workers,
        worker_init_fn=_seed_worker,
        drop_last=len(training.labels) > settings.batch_size,  # batch norm needs two
    )


def _optimiser(
    settings: TrainingSettings,
    network: BreastClassifier,
    phase: str,
    epochs: int,
    pretrained: bool,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    frozen = phase == "frozen"
    for parameter in network.backbone.parameters():
        parameter.requires_grad_(not frozen)
    groups: list[dict[str, Any]] = [
        {"params": [p for n, p in network.named_parameters() if not n.startswith("backbone.")]}
    ]
    if not frozen:
        rate = settings.backbone_learning_rate if pretrained else settings.learning_rate
        groups.append({"params": list(network.backbone.parameters()), "lr": rate})
    optimiser = torch.optim.AdamW(
        groups, lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    return optimiser, torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(epochs, 1))


def _train_epoch(
    network: BreastClassifier,
    loader: torch.utils.data.DataLoader[Any],
    criterion: nn.Module,
    optimiser: torch.optim.Optimizer,
    device: torch.device,
    phase: str,
    progress: bool,
) -> tuple[float, float]:
    network.train()
    if phase == "frozen":  # a frozen backbone keeps its batch-norm statistics too
        network.backbone.eval()
    scaler = torch.amp.GradScaler(
        "cuda", enabled=device.type == "cuda" and not torch.cuda.is_bf16_supported()
    )
    total, correct, seen = 0.0, 0, 0
    for batch in tqdm(loader, desc=phase, unit="batch", leave=False, disable=not progress):
        images, labels = batch[0].to(device), batch[1].to(device)
        with autocast_for(device):
            outputs = network(images)
            logits = outputs.logits
            if isinstance(criterion, _JointLoss):  # batches of AnnotatedImages
                assert outputs.saliency is not None
                masks, annotated = batch[2].to(device), batch[3].to(device)
                loss = criterion(
                    logits, labels, outputs.saliency, masks, annotated, outputs.lesion_types
                )
            else:
                loss = criterion(logits.float(), labels)
        optimiser.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimiser)
        scaler.update()
        total += float(loss.detach()) * len(labels)
        correct += int((logits.argmax(dim=1) == labels).sum())
        seen += len(labels)
    return total / max(seen, 1), correct / max(seen, 1)


def predict_placed(
    network: BreastClassifier,
    placed: PlacedSet,
    device: torch.device,
    criterion: nn.Module | None = None,
    batch_size: int = 32,
) -> tuple[np.ndarray, float]:
    """Class probabilities (n, classes) for placed images, and the mean loss when asked."""
    network.eval()
    outputs, total = [], 0.0
    with torch.no_grad():
        for part, batch in placed.batches(batch_size):
            images = torch.from_numpy(batch)[:, None].to(device)
            with autocast_for(device):
                logits = network(images).logits.float()
            if criterion is not None:
                labels = torch.from_numpy(placed.labels[part]).to(device)
                total += float(criterion(logits, labels)) * len(labels)
            outputs.append(torch.softmax(logits, dim=1).cpu().numpy())
    return np.concatenate(outputs), total / max(len(placed.labels), 1)


def predict_scores(
    network: BreastClassifier,
    placed: PlacedSet,
    device: torch.device,
    task: str,
    criterion: nn.Module | None = None,
    batch_size: int = 32,
) -> tuple[np.ndarray, float, np.ndarray]:
    """As :func:`predict_placed`, with the engine's raw score per image: the positive
    classes' probability, averaged with the saliency map's peak (upsampled to the working
    grid as the engine does) when the network has the head, so the AUC that chooses the
    epoch and the calibration fitted here are those of what the node reports."""
    if network.saliency is None:
        probabilities, loss = predict_placed(network, placed, device, criterion, batch_size)
        return probabilities, loss, positive_score(task, probabilities)
    network.eval()
    outputs, peaks, total = [], [], 0.0
    with torch.no_grad():
        for part, batch in placed.batches(batch_size):
            images = torch.from_numpy(batch)[:, None].to(device)
            with autocast_for(device):
                result = network(images)
            logits = result.logits.float()
            assert result.saliency is not None
            evidence = nn.functional.interpolate(
                torch.sigmoid(result.saliency.float()),
                size=images.shape[-2:],
                mode="bilinear",
                align_corners=False,
            )
            peaks.append(evidence.amax(dim=(1, 2, 3)).cpu().numpy())
            if criterion is not None:
                labels = torch.from_numpy(placed.labels[part]).to(device)
                total += float(criterion(logits, labels)) * len(labels)
            outputs.append(torch.softmax(logits, dim=1).cpu().numpy())
    probabilities = np.concatenate(outputs)
    scores = (positive_score(task, probabilities) + np.concatenate(peaks)) / 2
    return probabilities, total / max(len(placed.labels), 1), np.clip(scores, 0.0, 1.0)


def save_checkpoint(
    trained: Trained,
    settings: TrainingSettings,
    weights: Path,
    name: str,
    version: str,
    training_data: str,
    extra: dict[str, Any] | None = None,
) -> Manifest:
    """Write the weights and a manifest in the node's inference format."""
    weights.parent.mkdir(parents=True, exist_ok=True)
    partial = weights.with_name(weights.name + ".partial")
    torch.save(trained.network.cpu().state_dict(), partial)
    partial.replace(weights)
    settings_record = {  # the pretrained file by name only: no local paths in a manifest
        k: (v.name if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v)
        for k, v in asdict(settings).items()
    }
    rule = settings.operating_point.describe() + " on the validation split"
    if trained.calibration is not None:
        rule += ", calibrated scores"
    manifest = Manifest(
        name=name,
        version=version,
        task=settings.task,
        labels=TASKS[settings.task],
        backbone=settings.backbone,
        input_size=settings.working_size,
        operating_threshold=trained.threshold,  # unrounded: cases at it stay on its side
        sha256=file_sha256(weights),
        validated_for_clinical_use=False,
        training_data=training_data,
        heatmap="gradcam" if trained.saliency_tap is None else "saliency",
        extra={
            "trained_with": "breastnode models train",
            **(
                {
                    "saliency_tap": trained.saliency_tap,
                    "localisation": "saliency head supervised by the lesion annotations of "
                    f"{trained.annotated_images} training images, jointly with the image label",
                }
                if trained.saliency_tap is not None
                else {}
            ),
            **({"lesion_types": list(trained.lesion_types)} if trained.lesion_types else {}),
            "hidden": settings.hidden,
            "pretrained": trained.pretrained or "none (trained from scratch)",
            "best_epoch": trained.best_epoch,
            "stopped_early": trained.stopped_early,
            "threshold_rule": rule,
            "device": trained.device,
            "settings": settings_record,
            "history": [asdict(log) for log in trained.history],
            **trained.extra,
            **(extra or {}),
        },
        calibration=trained.calibration,
        operating_point=trained.operating_point,
    )
    write_manifest(weights, manifest)
    return manifest


def write_epoch_log(path: Path, history: Sequence[EpochLog]) -> None:
    path.write_text("".join(json.dumps(asdict(log)) + "\n" for log in history), encoding="utf-8")
