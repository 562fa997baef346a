"""Training that uses lesion annotations, on SYNTHETIC phantoms whose lesions are known: the
masks are rasterised where the pixels are placed and moved with them by augmentation, and a
network trained with them finds the lesions (FROC through ``models evaluate``) better than
one trained on image labels alone, at the same budget and seed."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from models.serving.checkpoint import read_verified
from models.synthetic.phantoms import phantom_view
from models.training.annotations import Annotation, Box, Circle, to_model, to_source
from models.training.dataset import Row, label_index, write_manifest
from models.training.evaluation import evaluate
from models.training.fit import TrainingSettings, save_checkpoint, train, uses_annotations
from models.training.splits import split_by_patient
from models.training.training_data import AnnotatedImages, Augmentation, lesion_mask, place_rows

SIZE = (96, 72)
TASK = "normal_abnormal"
LESION_MM = (20.0, 35.0)


def annotated_rows(folder: Path, patients: int, seed: int = 5) -> list[Row]:
    """Phantom women (both breasts, CC and MLO), one breast of every other woman with a
    lesion, each lesion's circle in source pixels as the manifest would carry it."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for patient in range(patients):
        lesion_side = ("L", "R")[patient % 4 // 2] if patient % 2 == 0 else None
        for side in ("L", "R"):
            for view in ("CC", "MLO"):
                phantom = phantom_view(
                    rng, side, view, (192, 144), side == lesion_side, lesion_diameter_mm=LESION_MM
                )
                path = folder / f"synthetic-{patient:03d}-{side}-{view}.png"
                Image.fromarray(np.round(phantom.image * 65535).astype(np.uint16)).save(path)
                lesion = phantom.lesion
                annotations = (
                    (Annotation(Circle(lesion.center.column, lesion.center.row, lesion.radius_px)),)
                    if lesion is not None
                    else ()
                )
                label = "abnormal" if lesion is not None else "normal"
                rows.append(
                    Row(
                        path,
                        f"SYNTHETIC-{patient:03d}",
                        f"s{patient}",
                        side,
                        view,
                        label,
                        None,
                        annotations,
                    )
                )
    return rows


def test_masks_are_placed_like_the_pixels_and_moved_by_augmentation(tmp_path: Path) -> None:
    rows = annotated_rows(tmp_path, 2)
    placed = place_rows(rows, label_index(TASK, rows), SIZE)
    assert placed.masks is not None and placed.annotated is not None
    assert placed.annotated.tolist() == [bool(r.annotations) for r in rows]
    for n, row in enumerate(rows):
        if not row.annotations:
            assert placed.masks[n].sum() == 0
            continue
        shape = row.annotations[0].shape
        assert isinstance(shape, Circle)
        circle = to_model(shape, placed.geometries[n])
        assert isinstance(circle, Circle)
        rows_, columns = np.nonzero(placed.masks[n])
        # the disc's centre and area, in the model grid where right views are mirrored
        assert columns.mean() == pytest.approx(circle.column, abs=0.5)
        assert rows_.mean() == pytest.approx(circle.row, abs=0.5)
        assert rows_.size == pytest.approx(np.pi * circle.radius**2, rel=0.15)
    # a lesion smaller than a model pixel keeps its centre's pixel; a box is filled
    geometry = placed.geometries[0]
    tiny, box = to_source(Circle(36, 48, 0.1), geometry), to_source(Box(20, 30, 29, 39), geometry)
    drawn = lesion_mask((Annotation(tiny), Annotation(box)), geometry, SIZE)
    assert drawn[48, 36] == 1 and drawn[30:40, 20:30].all() and drawn.sum() == 101
    no_annotations = place_rows([replace(r, annotations=()) for r in rows], [0] * len(rows), SIZE)
    assert no_annotations.masks is None and not uses_annotations(TASK, no_annotations)
    assert uses_annotations(TASK, placed) and not uses_annotations("density", placed)

    # augmentation moves the mask with the pixels: a pure flip flips both, and the
    # augmented mask's lesion is where the augmented image's bright lesion is
    index = next(n for n, row in enumerate(rows) if row.annotations)
    flip = Augmentation(0, (1, 1), (1, 1), 1.0, 0.0, (1, 1), (1, 1))
    image = torch.from_numpy(placed.images[index].astype(np.float32))[None]
    mask = torch.from_numpy(placed.masks[index].astype(np.float32))[None]
    flipped_image, flipped_mask = flip.with_mask(image, mask, torch.Generator().manual_seed(0))
    assert flipped_mask is not None and torch.allclose(flipped_mask, mask.flip(-2), atol=1e-5)
    assert torch.allclose(flipped_image, image.flip(-2), atol=1e-5)
    dataset = AnnotatedImages(placed, Augmentation(), seed=3)
    moved, label, moved_mask, annotated = dataset[index]
    assert label == 1 and annotated and moved_mask.shape == (1, *SIZE)
    assert not torch.equal(moved_mask, mask) and float(moved_mask.sum()) > 0
    same = Augmentation()(image, torch.Generator().manual_seed(3))  # same draws as without
    assert torch.allclose(moved, (same - same.mean()) / same.std(unbiased=False), atol=1e-4)


def test_annotation_supervised_training_finds_lesions_better_at_the_same_budget(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    rows = annotated_rows(tmp_path / "data", 24)
    labels = label_index(TASK, rows)
    split = split_by_patient([r.patient_id for r in rows], labels, (0.5, 0.25, 0.25), seed=1)
    parts = {"train": split.train, "validation": split.validation, "test": split.test}
    chosen = {name: [rows[i] for i in part] for name, part in parts.items()}
    test_rows = [replace(r, split="test") for r in chosen["test"]]
    write_manifest(tmp_path / "test.csv", test_rows)
    # the saliency head alone (the patch stage is measured in test_patch_stage.py)
    budget = TrainingSettings(
        task=TASK, working_size=SIZE, epochs=6, patience=6, batch_size=16, patch_epochs=0
    )

    figures = {}
    for kind in ("images", "annotations"):
        keep = kind == "annotations"
        placed = {
            name: place_rows(
                [r if keep else replace(r, annotations=()) for r in part],
                label_index(TASK, part),
                SIZE,
            )
            for name, part in chosen.items()
            if name != "test"
        }
        trained = train(budget, placed["train"], placed["validation"])
        weights = tmp_path / kind / "model.pt"
        manifest = save_checkpoint(trained, budget, weights, f"test-{kind}", "0.1.0", "synthetic")
        assert read_verified(weights) == manifest
        assert manifest.heatmap == ("saliency" if keep else "gradcam")
        result = evaluate(weights, test_rows, device="cpu", rounds=50)
        assert result.froc is not None
        figures[kind] = (result.froc.at[1.0], result.binary.roc_auc.value)
    froc_images = figures["images"][0]
    froc_annotations, auc_annotations = figures["annotations"]
    print(f"FROC@1 and AUC: image labels {figures['images']}, annotations {figures['annotations']}")
    assert froc_annotations >= 0.8, figures
    assert froc_annotations >= froc_images + 0.2, figures
    assert auc_annotations >= 0.8, figures
    print(f"both trainings and evaluations: {time.monotonic() - started:.0f} s")
