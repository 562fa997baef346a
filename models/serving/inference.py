"""The inference engine: one verified checkpoint, warm on one device, batches of views in,
scores and model-grid heatmaps out.

The same code runs on a GPU and on the CPU: the host decides the geometry (flip, breast
crop, scale, padding); the crop goes to the device (through pinned memory on CUDA), where it
is resized, padded and standardised, and the network runs under autocast on CUDA (bfloat16
where supported, else float16) or in float32 on the CPU. Views from several studies may
share a batch; callers keep the order.

A view's score is the probability of the task's positive classes (``lesion``,
``malignant``, BI-RADS 4-5). With a saliency head the score is the mean of that and the
saliency map's peak, so a network must both classify the view and point at something to
call it positive. When the checkpoint carries a calibration (``models.serving.calibration``), the
score reported is the calibrated one, a probability; the breast and study scores and the
findings (the score weighted by the heatmap's peak) all derive from it, so they and the
operating threshold share that scale. The class probabilities stay the network's own.
Heatmaps are in [0, 1] in the model grid, scaled so their peak is 1 when
there is any evidence; the caller weights them by the score.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.serving.checkpoint import TASKS, CheckpointError, Manifest, read_verified
from models.serving.networks import BreastClassifier, grad_cam_and_logits
from models.serving.preprocess import Geometry

logger = logging.getLogger(__name__)

POSITIVE_LABELS: dict[str, tuple[str, ...]] = {
    "lesion": ("lesion",),
    "normal_abnormal": ("abnormal",),
    "benign_malignant": ("malignant",),
    "normal_benign_malignant": ("malignant",),
    "birads": ("BI-RADS 4", "BI-RADS 5"),
    "mri_benign_malignant": ("malignant",),
    # a density model's score: dense breasts, the ones screening reports as such
    "density": ("c", "d"),
    "density_fgd": ("dense-glandular",),
}


def positive_indices(task: str) -> list[int]:
    """Indices of the task's positive classes among its labels."""
    return [TASKS[task].index(label) for label in POSITIVE_LABELS[task]]


def positive_score(task: str, probabilities: np.ndarray) -> np.ndarray:
    """The node's score from class probabilities (cases, classes): the positive classes'
    summed probability (without a saliency head, this is a view's score)."""
    return np.asarray(probabilities[:, positive_indices(task)].sum(axis=1))


def positive_cases(task: str, truth: np.ndarray) -> np.ndarray:
    """1 where a case's class (index) is one of the task's positive classes, else 0."""
    return np.isin(truth, positive_indices(task)).astype(int)


def autocast_for(device: torch.device) -> AbstractContextManager[object]:
    """bfloat16 autocast on CUDA (float16 where bfloat16 is not supported); nothing on the
    CPU, which runs float32."""
    if device.type != "cuda":
        return nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


@dataclass(frozen=True)
class ViewPrediction:
    score: float
    probabilities: tuple[float, ...]  # per manifest label
    heatmap: np.ndarray  # model grid, float32 in [0, 1]
    # (types, h, w) probabilities of each lesion type on the type head's grid (which spans
    # the model grid), when the checkpoint has the head; the engine's ``lesion_types``
    lesion_types: np.ndarray | None = None

    def lesion_type_at(self, names: Sequence[str], column: float, row: float) -> str | None:
        """The most probable of the checkpoint's lesion types (``names``) at a model-grid
        point: the only one when it knows one, None when it knows none."""
        if self.lesion_types is None:
            return names[0] if len(names) == 1 else None
        _, height, width = self.lesion_types.shape
        rows, columns = self.heatmap.shape
        cell_row = min(max(int(row * height / rows), 0), height - 1)
        cell_column = min(max(int(column * width / columns), 0), width - 1)
        return names[int(np.argmax(self.lesion_types[:, cell_row, cell_column]))]


def pick_device(requested: str = "auto") -> torch.device:
    """``auto``: the first CUDA device when there is one, else the CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CheckpointError(f"device {requested!r} was asked for but CUDA is not available")
    return device


def lesion_types_of(manifest: Manifest) -> tuple[str, ...]:
    """The lesion types a checkpoint was trained to find (manifest ``lesion_types``): with
    two or more its type head tells them apart; one is the type of every finding."""
    return tuple(str(name) for name in manifest.extra.get("lesion_types", ()))


def build_network(manifest: Manifest) -> BreastClassifier:
    tap = manifest.extra.get("saliency_tap")
    return BreastClassifier(
        manifest.backbone,
        classes=len(manifest.labels),
        hidden=int(manifest.extra.get("hidden", 256)),
        saliency_head=manifest.heatmap == "saliency",
        saliency_tap=int(tap) if tap is not None else None,
        lesion_types=len(types) if len(types := lesion_types_of(manifest)) > 1 else 0,
    )


class Predictor:
    """A loaded model on its device. Not thread-safe: one engine per worker thread."""

    def __init__(
        self, weights: Path, device: str = "auto", batch_size: int = 8, threads: int = 0
    ) -> None:
        """``threads``: CPU threads for torch (0: torch's default, one per core). Fewer
        threads keep inference from stalling when the receivers need a core."""
        self.manifest = read_verified(weights)
        if threads > 0:
            torch.set_num_threads(threads)
        self.device = pick_device(device)
        self.batch_size = max(1, batch_size)
        network = build_network(self.manifest)
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            network.load_state_dict(state)
        except (RuntimeError, ValueError, OSError) as exc:
            raise CheckpointError(f"checkpoint {weights.name} cannot be loaded: {exc}") from exc
        self.network: BreastClassifier = network.to(self.device).eval()
        self.positive = positive_indices(self.manifest.task)  # the manifest's labels are TASKS'
        self.lesion_types = lesion_types_of(self.manifest)
        logger.info(
            "model %s %s (%s, %s) loaded on %s",
            self.manifest.name,
            self.manifest.version,
            self.manifest.backbone,
            self.manifest.task,
            self.device,
        )

    @property
    def working_size(self) -> tuple[int, int]:
        return self.manifest.input_size

    def _to_device(self, inputs: Sequence[np.ndarray]) -> torch.Tensor:
        batch = torch.from_numpy(np.stack(inputs).astype(np.float32, copy=False))[:, None]
        if self.device.type == "cuda":
            return batch.pin_memory().to(self.device, non_blocking=True)
        return batch

    def predict(self, inputs: Sequence[np.ndarray]) -> list[ViewPrediction]:
        """Predictions for model inputs (each ``working_size``, as ``prepare`` makes them)."""
        for item in inputs:
            if item.shape != self.working_size:
                raise ValueError(f"model input {item.shape} is not {self.working_size}")
        predictions: list[ViewPrediction] = []
        for start in range(0, len(inputs), self.batch_size):
            batch = self._to_device(inputs[start : start + self.batch_size])
            predictions.extend(self._run(batch))
        return predictions

    def predict_images(
        self, images: Sequence[np.ndarray], geometries: Sequence[Geometry]
    ) -> list[ViewPrediction]:
        """Predictions for display images (source grid, [0, 1]) placed by their geometries
        (``plan``): only the crop travels to the device, where it is resized, padded and
        standardised (the host does the same with ``prepare`` for training)."""
        if len(images) != len(geometries):
            raise ValueError("one geometry per image")
        predictions: list[ViewPrediction] = []
        for start in range(0, len(images), self.batch_size):
            end = start + self.batch_size
            batch = self.prepare_on_device(images[start:end], geometries[start:end])
            predictions.extend(self._run(batch))
        return predictions

    def prepare_on_device(
        self, images: Sequence[np.ndarray], geometries: Sequence[Geometry]
    ) -> torch.Tensor:
        """(batch, 1, rows, columns) standardised model inputs, made on the engine's device."""
        prepared = []
        for image, geometry in zip(images, geometries, strict=True):
            if geometry.model_shape != self.working_size:
                raise ValueError(f"geometry for {geometry.model_shape}, not {self.working_size}")
            top, left, bottom, right = geometry.crop
            oriented = image[:, ::-1] if geometry.flipped else image
            crop = torch.from_numpy(
                np.ascontiguousarray(oriented[top:bottom, left:right], dtype=np.float32)
            )
            if self.device.type == "cuda":
                crop = crop.pin_memory()
            crop = crop.to(self.device, non_blocking=True)
            rows, columns = geometry.inner_shape
            resized = nn.functional.interpolate(
                crop[None, None],
                size=(rows, columns),
                mode="bilinear",
                antialias=True,
                align_corners=False,
            )[0, 0]
            model = torch.zeros(self.working_size, device=self.device)
            pad_rows, pad_columns = geometry.pad
            model[pad_rows : pad_rows + rows, pad_columns : pad_columns + columns] = resized
            spread = model.std(unbiased=False).clamp_min(1e-6)
            prepared.append((model - model.mean()) / spread)
        return torch.stack(prepared)[:, None]

    def _run(self, images: torch.Tensor) -> Iterator[ViewPrediction]:
        types: torch.Tensor | None = None
        with autocast_for(self.device):
            if self.network.saliency is not None:
                with torch.no_grad():
                    outputs = self.network(images)
                assert outputs.saliency is not None
                evidence = torch.sigmoid(outputs.saliency.float())
                evidence = nn.functional.interpolate(
                    evidence, size=self.working_size, mode="bilinear", align_corners=False
                )[:, 0]
                logits = outputs.logits
                if outputs.lesion_types is not None:
                    types = torch.softmax(outputs.lesion_types.float(), dim=1)
            else:
                target = int(self.positive[-1])
                evidence, logits = grad_cam_and_logits(self.network, images, target)
        probabilities = torch.softmax(logits.float(), dim=1)
        class_scores = probabilities[:, self.positive].sum(dim=1)
        if self.network.saliency is not None:
            peaks = evidence.amax(dim=(1, 2))
            scores = (class_scores + peaks) / 2
            heatmaps = evidence / peaks.clamp_min(1e-6)[:, None, None]
        else:
            scores = class_scores
            heatmaps = evidence
        probabilities_np = probabilities.cpu().numpy()
        scores_np = scores.float().clamp(0, 1).cpu().numpy()
        if self.manifest.calibration is not None:  # None: an older checkpoint, raw scores
            scores_np = self.manifest.calibration.apply(scores_np)
        heatmaps_np = heatmaps.float().clamp(0, 1).cpu().numpy()
        types_np = types.cpu().numpy() if types is not None else None
        for n in range(images.shape[0]):
            yield ViewPrediction(
                float(scores_np[n]),
                tuple(float(p) for p in probabilities_np[n]),
                heatmaps_np[n].astype(np.float32),
                types_np[n].astype(np.float32) if types_np is not None else None,
            )
