"""Checkpoint manifests: what a weights file is, and proof that it is that file.

A checkpoint is a local weights file (``NAME.pt``) with a JSON manifest beside it
(``NAME.json``): name, version, task, labels, backbone, input size, operating threshold,
the weights file's SHA-256, whether it is validated for clinical use, and a summary of the
training data; for checkpoints trained since calibration came in, the score calibration
and the rule that chose the operating threshold (absent in older manifests, which load and
score as before). The hash is checked before anything is loaded; nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from models.errors import ModelError
from models.serving.calibration import Calibration, OperatingPoint

TASKS: dict[str, tuple[str, ...]] = {
    "lesion": ("no lesion", "lesion"),
    "normal_abnormal": ("normal", "abnormal"),
    "benign_malignant": ("benign", "malignant"),
    "normal_benign_malignant": ("normal", "benign", "malignant"),
    "birads": ("BI-RADS 1", "BI-RADS 2", "BI-RADS 3", "BI-RADS 4", "BI-RADS 5"),
    "mri_benign_malignant": ("benign", "malignant"),
    # BI-RADS breast composition (a: almost entirely fat ... d: extremely dense); CBIS-DDSM's
    # breast_density 1-4 and VinDr-Mammo's DENSITY A-D are these
    "density": ("a", "b", "c", "d"),
    # mini-MIAS's background tissue: fatty, fatty-glandular, dense-glandular (F, G, D)
    "density_fgd": ("fatty", "fatty-glandular", "dense-glandular"),
}
# The working size a full-field mammography checkpoint is expected to use unless its
# manifest says otherwise (rows, columns): about 0.25 mm per pixel on a 24 x 30 cm detector.
FULL_FIELD_WORKING_SIZE = (1024, 832)
BACKBONES = ("resnet50", "resnet18", "efficientnet_b0", "vgg16", "densenet121", "inception_v3")
HEATMAPS = ("gradcam", "saliency")


class CheckpointError(ModelError):
    """The checkpoint is missing, malformed, or not the file its manifest describes."""


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    task: str
    labels: tuple[str, ...]
    backbone: str
    input_size: tuple[int, int]  # rows, columns
    operating_threshold: float
    sha256: str
    validated_for_clinical_use: bool
    training_data: str
    heatmap: str = "gradcam"
    extra: dict[str, Any] = field(default_factory=dict)
    # None in manifests written before calibration: raw scores, threshold rule in extra
    calibration: Calibration | None = None
    operating_point: OperatingPoint | None = None

    def __post_init__(self) -> None:
        problems = []
        point = self.operating_point
        if point is not None and point.threshold != self.operating_threshold:
            problems.append("operating_point.threshold is not the operating_threshold")
        if self.task not in TASKS:
            problems.append(f"task {self.task!r} is not one of {', '.join(TASKS)}")
        elif tuple(self.labels) != TASKS[self.task]:
            problems.append(f"labels {list(self.labels)} do not match task {self.task!r}")
        if self.backbone not in BACKBONES:
            problems.append(f"backbone {self.backbone!r} is not one of {', '.join(BACKBONES)}")
        if self.heatmap not in HEATMAPS:
            problems.append(f"heatmap {self.heatmap!r} is not one of {', '.join(HEATMAPS)}")
        if not 0.0 <= self.operating_threshold <= 1.0:
            problems.append("operating_threshold must be within [0, 1]")
        if len(self.input_size) != 2 or min(self.input_size) < 32:
            problems.append("input_size must be [rows, columns], each at least 32")
        if len(self.sha256) != 64:
            problems.append("sha256 must be 64 hexadecimal characters")
        if problems:
            raise CheckpointError("invalid manifest: " + "; ".join(problems))

    def to_json(self) -> str:
        data = asdict(self)
        data["labels"] = list(self.labels)
        data["input_size"] = list(self.input_size)
        for optional in ("calibration", "operating_point"):  # older readers never saw them
            if data[optional] is None:
                del data[optional]
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        try:
            data = json.loads(text)
            data["labels"] = tuple(data["labels"])
            data["input_size"] = tuple(data["input_size"])
            if data.get("calibration") is not None:
                data["calibration"] = Calibration.from_dict(data["calibration"])
            if data.get("operating_point") is not None:
                data["operating_point"] = OperatingPoint.from_dict(data["operating_point"])
            return cls(**data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"unreadable manifest: {exc}") from exc


def manifest_path(weights: Path) -> Path:
    return weights.with_suffix(".json")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_verified(weights: Path) -> Manifest:
    """The manifest of ``weights``, after checking the file is the one it describes."""
    if not weights.is_file():
        raise CheckpointError(f"checkpoint file not found: {weights}")
    sidecar = manifest_path(weights)
    if not sidecar.is_file():
        raise CheckpointError(f"manifest not found beside the checkpoint: {sidecar}")
    manifest = Manifest.from_json(sidecar.read_text(encoding="utf-8"))
    actual = file_sha256(weights)
    if actual != manifest.sha256:
        raise CheckpointError(
            f"checkpoint {weights.name} does not match its manifest "
            f"(SHA-256 {actual[:12]}..., manifest says {manifest.sha256[:12]}...)"
        )
    return manifest


def write_manifest(weights: Path, manifest: Manifest) -> Path:
    """Write the manifest beside ``weights`` (its sha256 must already be the file's)."""
    if file_sha256(weights) != manifest.sha256:
        raise CheckpointError("the manifest's sha256 is not the weights file's")
    path = manifest_path(weights)
    path.write_text(manifest.to_json() + "\n", encoding="utf-8")
    return path
