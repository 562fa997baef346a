"""Checkpoint manifests: validation, round trip, and the hash check before loading."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.serving.checkpoint import (
    CheckpointError,
    Manifest,
    file_sha256,
    read_verified,
    write_manifest,
)


def manifest_for(weights: Path, **changes: object) -> Manifest:
    values: dict[str, object] = {
        "name": "demo",
        "version": "0.1.0",
        "task": "lesion",
        "labels": ("no lesion", "lesion"),
        "backbone": "resnet18",
        "input_size": (256, 192),
        "operating_threshold": 0.5,
        "sha256": file_sha256(weights),
        "validated_for_clinical_use": False,
        "training_data": "synthetic phantoms",
    }
    values.update(changes)
    return Manifest(**values)  # type: ignore[arg-type]


def test_round_trip_and_verification(tmp_path: Path) -> None:
    weights = tmp_path / "demo.pt"
    weights.write_bytes(b"synthetic weights")
    write_manifest(weights, manifest_for(weights))
    loaded = read_verified(weights)
    assert loaded == manifest_for(weights)
    weights.write_bytes(b"other weights")
    with pytest.raises(CheckpointError, match="does not match its manifest"):
        read_verified(weights)


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        read_verified(tmp_path / "absent.pt")
    lone = tmp_path / "lone.pt"
    lone.write_bytes(b"x")
    with pytest.raises(CheckpointError, match="manifest not found"):
        read_verified(lone)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"task": "segmentation"}, "task"),
        ({"labels": ("a", "b")}, "labels"),
        ({"backbone": "vit_h"}, "backbone"),
        ({"operating_threshold": 1.5}, "operating_threshold"),
        ({"input_size": (16, 16)}, "input_size"),
        ({"heatmap": "magic"}, "heatmap"),
    ],
)
def test_invalid_manifests(tmp_path: Path, change: dict[str, object], message: str) -> None:
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"w")
    with pytest.raises(CheckpointError, match=message):
        manifest_for(weights, **change)
