"""The patch stage on SYNTHETIC phantoms: where patches come from (lesion patches on the
lesion, normal patches inside the breast and clear of every lesion), and that the stage's
backbone tells lesion patches from tissue on images it never saw."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from models.serving.networks import BreastClassifier
from models.training.dataset import label_index
from models.training.patch_stage import (
    INSIDE,
    TISSUE,
    PatchSettings,
    PatchSource,
    train_patch_stage,
)
from models.training.splits import split_by_patient
from models.training.training_data import place_rows
from tests.models.test_annotation_training import SIZE, TASK, annotated_rows

PATCH = 24


def test_patches_come_from_the_lesion_or_from_clear_breast(tmp_path: Path) -> None:
    rows = annotated_rows(tmp_path, 4)
    placed = place_rows(rows, label_index(TASK, rows), SIZE)
    assert placed.masks is not None
    source = PatchSource(placed, PATCH)
    half = PATCH // 2
    for n in range(len(rows)):
        mask = placed.masks[n].astype(bool)
        assert len(source.lesion[n]) == int(mask.sum())
        image = placed.images[n].astype(np.float32)
        assert len(source.normal[n]) > 0
        for row, column in source.normal[n][:: max(1, len(source.normal[n]) // 50)]:
            window = (slice(row - half, row + half + 1), slice(column - half, column + half + 1))
            assert not mask[window].any()  # clear of the lesion by half a patch
            assert image[row, column] > TISSUE  # centred in the breast, not the background
            assert (image[window] > TISSUE).mean() >= INSIDE - 0.05
    lesions, normals, classes = source.draw(np.random.default_rng(0), 3, 2)
    assert len(lesions) == 3 * sum(1 for m in placed.masks if m.any())
    assert set(classes) == {1}  # untyped lesions: one lesion class
    assert len(normals) == 2 * len(rows) and all(p.shape == (PATCH, PATCH) for p in normals)
    # a lesion patch holds its lesion: it is brighter at its centre than normal patches
    centre = slice(half - 3, half + 4)
    assert np.mean([p[centre, centre].mean() for p in lesions]) > np.mean(
        [p[centre, centre].mean() for p in normals]
    )


def test_the_patch_stage_tells_lesions_from_tissue_on_unseen_women(tmp_path: Path) -> None:
    rows = annotated_rows(tmp_path, 16)
    labels = label_index(TASK, rows)
    split = split_by_patient([r.patient_id for r in rows], labels, (0.6, 0.4, 0.0), seed=1)
    train_rows = [rows[i] for i in split.train]
    held_rows = [rows[i] for i in split.validation]
    training = place_rows(train_rows, label_index(TASK, train_rows), SIZE)
    held = place_rows(held_rows, label_index(TASK, held_rows), SIZE)
    torch.manual_seed(0)
    network = BreastClassifier("resnet18", 2, saliency_head=True, saliency_tap=5)
    before = {k: v.clone() for k, v in network.backbone.state_dict().items()}
    stage = train_patch_stage(
        network, training, held, PatchSettings(epochs=4, size=PATCH), torch.device("cpu")
    )
    aucs = [epoch["validation_patch_auc"] for epoch in stage.history]
    print(f"validation patch AUC by epoch: {aucs}")
    assert len(stage.history) == 4 and 1 <= stage.best_epoch <= 4
    assert max(aucs) >= 0.85
    assert aucs[stage.best_epoch - 1] == max(aucs)  # the kept backbone is the best epoch's
    changed = [k for k, v in stage.backbone.items() if v.is_floating_point()]
    assert any(not torch.equal(stage.backbone[k], before[k]) for k in changed)
