"""Small untrained checkpoints that tests make for themselves (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

import torch

from models.serving.checkpoint import TASKS, Manifest, file_sha256, write_manifest
from models.serving.networks import BreastClassifier


def untrained_checkpoint(
    folder: Path,
    task: str = "mri_benign_malignant",
    backbone: str = "resnet18",
    input_size: tuple[int, int] = (64, 64),
    heatmap: str = "gradcam",
) -> Path:
    torch.manual_seed(0)
    network = BreastClassifier(
        backbone, classes=len(TASKS[task]), saliency_head=heatmap == "saliency"
    )
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{task}-{backbone}.pt"
    torch.save(network.state_dict(), weights)
    write_manifest(
        weights,
        Manifest(
            name=f"untrained-{task}",
            version="0.0.0",
            task=task,
            labels=TASKS[task],
            backbone=backbone,
            input_size=input_size,
            operating_threshold=0.5,
            sha256=file_sha256(weights),
            validated_for_clinical_use=False,
            training_data="untrained: random weights for tests",
            heatmap=heatmap,
        ),
    )
    return weights
