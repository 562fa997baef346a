"""The networks: a torchvision backbone chosen by the manifest, a classification head, and
optionally a saliency head for heatmaps finer than the last convolutional stage.

Backbones are built without pretrained weights (nothing is downloaded); transfer learning
loads a local weights file into them. Inputs are single-channel images repeated to the three
channels the backbones expect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
import torchvision
from torch import nn

# backbone name -> (constructor, feature channels of the last convolutional stage)
BACKBONES: dict[str, tuple[Callable[..., nn.Module], int]] = {
    "resnet18": (torchvision.models.resnet18, 512),
    "resnet50": (torchvision.models.resnet50, 2048),
    "efficientnet_b0": (torchvision.models.efficientnet_b0, 1280),
    "vgg16": (torchvision.models.vgg16, 512),
    "densenet121": (torchvision.models.densenet121, 1024),
    "inception_v3": (torchvision.models.inception_v3, 2048),
}


def torchvision_classifier(backbone: str) -> nn.Module:
    """The whole torchvision classifier, untrained (the form pretrained files are saved in)."""
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; one of {', '.join(BACKBONES)}")
    constructor, _ = BACKBONES[backbone]
    if backbone == "inception_v3":
        return constructor(weights=None, aux_logits=False, init_weights=True)
    return constructor(weights=None)


def feature_extractor(backbone: str, model: nn.Module | None = None) -> tuple[nn.Sequential, int]:
    """The convolutional part of a torchvision classifier (``model``, or a new untrained
    one), ending at its last stage; the layers are shared with ``model``."""
    model = model if model is not None else torchvision_classifier(backbone)
    channels = BACKBONES[backbone][1]
    if backbone.startswith("resnet") or backbone == "inception_v3":
        layers = [
            m
            for name, m in model.named_children()
            if name not in {"avgpool", "fc", "dropout", "AuxLogits"}
        ]
        return nn.Sequential(*layers), channels
    features = cast(nn.Sequential, model.features)
    if backbone == "densenet121":
        return nn.Sequential(*features.children(), nn.ReLU(inplace=False)), channels
    return nn.Sequential(*features.children()), channels  # efficientnet_b0, vgg16


@dataclass(frozen=True)
class Outputs:
    logits: torch.Tensor  # (batch, classes)
    features: torch.Tensor  # last convolutional stage, for Grad-CAM
    saliency: torch.Tensor | None  # (batch, 1, h, w) logits, when the network has the head
    # (batch, types, h, w) logits of each cell's lesion type, when the network has that head
    lesion_types: torch.Tensor | None = None


class BreastClassifier(nn.Module):
    """Backbone, global pooling, then dense layers with batch normalisation and dropout.

    The saliency head (when wanted) reads the backbone after its first ``saliency_tap``
    stages: an earlier stage has a finer grid (stride 8 rather than 32), which is what
    locating a lesion within millimetres needs. ``None`` taps the last stage. With
    ``lesion_types`` (two or more) a second head on the same tap says, per cell, which type
    a lesion there is (mass, calcification, ...): a finding's type is read at its peak.
    """

    def __init__(
        self,
        backbone: str,
        classes: int,
        hidden: int = 256,
        dropout: float = 0.3,
        saliency_head: bool = False,
        saliency_tap: int | None = None,
        lesion_types: int = 0,
    ) -> None:
        super().__init__()
        if lesion_types and (not saliency_head or lesion_types < 2):
            raise ValueError("a lesion type head needs the saliency head and two types or more")
        self.backbone, channels = feature_extractor(backbone)
        stages = len(self.backbone)
        self.tap = stages if saliency_tap is None else saliency_tap
        if not 1 <= self.tap <= stages:
            raise ValueError(f"saliency_tap must be within 1..{stages} for {backbone}")
        tap_channels = channels if self.tap == stages else _channels_after(self.backbone, self.tap)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(channels, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, classes),
        )
        self.saliency = (
            nn.Sequential(
                nn.Conv2d(tap_channels, 64, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(64, 1, 1),
            )
            if saliency_head
            else None
        )
        self.lesion_type = (
            nn.Sequential(
                nn.Conv2d(tap_channels, 64, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(64, lesion_types, 1),
            )
            if lesion_types
            else None
        )

    def forward(self, images: torch.Tensor) -> Outputs:
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        stages = list(self.backbone.children())
        tapped = images
        for stage in stages[: self.tap]:
            tapped = stage(tapped)
        features = tapped
        for stage in stages[self.tap :]:
            features = stage(features)
        saliency = self.saliency(tapped) if self.saliency is not None else None
        types = self.lesion_type(tapped) if self.lesion_type is not None else None
        return Outputs(self.head(features), features, saliency, types)


def saliency_loss(
    saliency: torch.Tensor,
    targets: torch.Tensor,
    supervised: torch.Tensor | None = None,
    balanced: bool = False,
) -> torch.Tensor:
    """Binary cross-entropy of the saliency head's logits (batch, 1, h, w) against wanted
    lesion maps in the model grid (batch, 1, rows, columns), averaged down to the head's
    grid and scaled to a peak of 1 per image, so a lesion smaller than a cell still asks
    for a full response there (an empty map stays empty). ``supervised`` (batch,) bool
    leaves out the images whose lesions are unknown; the loss is their mean. ``balanced``
    weighs the lesion cells of the batch as much as all the others together: a lesion is a
    few cells of hundreds, and few images with few epochs otherwise learn an empty map."""
    grid = (int(saliency.shape[-2]), int(saliency.shape[-1]))
    wanted = nn.functional.adaptive_avg_pool2d(targets.float(), grid)
    wanted = wanted / wanted.amax(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    if supervised is None and not balanced:
        return nn.functional.binary_cross_entropy_with_logits(saliency.float(), wanted)
    if supervised is None:
        supervised = torch.ones(len(wanted), dtype=torch.bool, device=wanted.device)
    cells = None
    if balanced:
        chosen = wanted[supervised]
        lesion = chosen.sum()
        ratio = ((chosen.numel() - lesion) / lesion.clamp_min(1e-6)).clamp(1.0, 1000.0)
        cells = 1 + (ratio.detach() - 1) * wanted
    each = nn.functional.binary_cross_entropy_with_logits(
        saliency.float(), wanted, weight=cells, reduction="none"
    ).mean(dim=(1, 2, 3))
    weights = supervised.to(each.dtype)
    return (each * weights).sum() / weights.sum().clamp_min(1.0)


def lesion_type_loss(logits: torch.Tensor, coverage: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the type head's logits (batch, types, h, w) against each type's
    lesion coverage in the model grid (batch, types, rows, columns), averaged down to the
    head's grid: a cell is asked for the types of the lesions over it in their proportions,
    weighted by the fraction of it they cover, so the edges that augmentation's interpolation
    smears a little lesion into (tissue to look at) weigh next to nothing; cells without a
    typed lesion are not asked."""
    grid = (int(logits.shape[-2]), int(logits.shape[-1]))
    wanted = nn.functional.adaptive_avg_pool2d(coverage.float(), grid)
    covered = wanted.sum(dim=1)  # (batch, h, w) typed lesion fraction of each cell
    if float(covered.sum()) <= 0:
        return logits.float().sum() * 0.0  # no typed lesion in the batch: nothing to learn
    shares = wanted / covered.clamp_min(1e-6)[:, None]
    each = -(shares * torch.log_softmax(logits.float(), dim=1)).sum(dim=1)
    asked = covered.clamp(max=1.0)
    return (each * asked).sum() / asked.sum()


def _channels_after(backbone: nn.Module, stages: int) -> int:
    """Channels of the backbone's output after its first ``stages`` stages (a dry run)."""
    probe = torch.zeros(1, 3, 96, 96)
    with torch.no_grad():
        was_training = backbone.training
        backbone.eval()
        for stage in list(backbone.children())[:stages]:
            probe = stage(probe)
        backbone.train(was_training)
    return int(probe.shape[1])


def grad_cam(model: BreastClassifier, images: torch.Tensor, target: int) -> torch.Tensor:
    """Grad-CAM of class ``target`` on the last convolutional stage, upsampled to the input
    size and scaled to [0, 1] per image: (batch, rows, columns)."""
    return grad_cam_and_logits(model, images, target)[0]


def grad_cam_and_logits(
    model: BreastClassifier, images: torch.Tensor, target: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Grad-CAM and the logits from one forward pass. The gradient Grad-CAM needs is the
    class score's with respect to the last feature map, which depends on the head alone: the
    backbone runs without autograd and only the head is differentiated (no weight
    gradients, a fraction of the memory of a full backward pass)."""
    model.eval()
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    with torch.no_grad():
        features = model.backbone(images)
    with torch.enable_grad():
        features = features.detach().float().requires_grad_(True)
        logits = model.head(features)
        (gradient,) = torch.autograd.grad(logits[:, target].sum(), features)
    weights = gradient.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * features.detach()).sum(dim=1, keepdim=True))
    cam = nn.functional.interpolate(
        cam.detach(), size=images.shape[-2:], mode="bilinear", align_corners=False
    )[:, 0]
    peak = cam.amax(dim=(1, 2), keepdim=True).clamp_min(1e-8)
    return cam / peak, logits.detach()


# parameters of the torchvision classifiers' own heads, which a pretrained file carries and
# the node's networks replace
_CLASSIFIER_PREFIXES = ("fc.", "classifier.", "AuxLogits.")


def load_pretrained_backbone(network: BreastClassifier, backbone: str, weights: Path) -> str:
    """Load a local pretrained weights file into the network's backbone (nothing is ever
    downloaded). Two forms are understood: a torchvision classifier's state dict (as
    torchvision publishes them, e.g. ImageNet weights) and a BreastNode checkpoint (its
    ``backbone.*`` part). Returns which form it was; anything else is a clear error."""
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise ValueError(f"pretrained weights {weights.name} cannot be read: {exc}") from exc
    if not isinstance(state, dict) or not state:
        raise ValueError(f"pretrained weights {weights.name} are not a state dict")
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if all(str(key).startswith(("backbone.", "head.", "saliency.")) for key in state):
        part = {
            k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")
        }
        _load_exactly(network.backbone, part, weights.name)
        return "breastnode checkpoint"
    model = torchvision_classifier(backbone)
    wanted = {k: v for k, v in state.items() if not str(k).startswith(_CLASSIFIER_PREFIXES)}
    own = {k for k in model.state_dict() if not k.startswith(_CLASSIFIER_PREFIXES)}
    if set(wanted) != own:
        missing, unexpected = sorted(own - set(wanted)), sorted(set(wanted) - own)
        raise ValueError(
            f"pretrained weights {weights.name} are not a {backbone} state dict "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    try:
        model.load_state_dict(wanted, strict=False)
    except RuntimeError as exc:  # shapes differ
        raise ValueError(f"pretrained weights {weights.name} do not fit {backbone}: {exc}") from exc
    extractor, _ = feature_extractor(backbone, model)
    _load_exactly(network.backbone, extractor.state_dict(), weights.name)
    return "torchvision state dict"


def _load_exactly(module: nn.Module, state: dict[str, torch.Tensor], name: str) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"pretrained weights {name} do not fit the backbone: {exc}") from exc
