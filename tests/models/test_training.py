"""Training on small SYNTHETIC labelled data: the loss falls, the checkpoint is one the node's
engine loads and scores with, pretrained weights are loaded and kept frozen first, the
class balancing and augmentation do what they say, and images reach the network through the
same path as in the node (PNG and DICOM alike)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from functools import partial
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from pydicom.uid import UID, generate_uid
from sklearn import metrics as skm

from models.serving.checkpoint import read_verified
from models.serving.inference import Predictor
from models.serving.networks import (
    BreastClassifier,
    load_pretrained_backbone,
    torchvision_classifier,
)
from models.serving.preprocess import plan
from models.synthetic import SyntheticPatient, mammogram, mr_series, phantom_dataset, write
from models.synthetic.phantoms import phantom_view, to_stored_values
from models.training.dataset import DatasetError, Row, label_index, read_manifest
from models.training.fit import (
    EpochLog,
    TrainingSettings,
    _training_loader,
    class_weights,
    save_checkpoint,
    train,
)
from models.training.splits import split_by_patient
from models.training.training_data import Augmentation, PlacedSet, load_image, place_rows

SIZE = (64, 48)
LARGE_MASS_MM = (30.0, 50.0)
TASK = "normal_abnormal"


def placed_splits(folder: Path, patients: int = 16) -> tuple[list[Row], dict[str, PlacedSet]]:
    # masses of 30-50 mm: in the 64 x 48 grid a 5-15 mm lesion (the phantoms' default, drawn
    # in millimetres on a full-field detector) is a pixel or two, more than 16 women teach
    large = partial(phantom_view, lesion_diameter_mm=LARGE_MASS_MM)
    with mock.patch("models.synthetic.labelled.phantom_view", large):
        rows = read_manifest(phantom_dataset(folder, patients), TASK)
    labels = label_index(TASK, rows)
    split = split_by_patient([r.patient_id for r in rows], labels, (0.6, 0.2, 0.2), seed=3)
    parts = {"train": split.train, "validation": split.validation, "test": split.test}
    placed = {
        name: place_rows([rows[i] for i in part], [labels[i] for i in part], SIZE)
        for name, part in parts.items()
    }
    return rows, placed


def settings(**changes: object) -> TrainingSettings:
    base = TrainingSettings(task=TASK, working_size=SIZE, epochs=6, patience=6, batch_size=16)
    return replace(base, **changes)  # type: ignore[arg-type]


def test_training_reduces_the_loss_and_writes_a_checkpoint_the_engine_scores_with(
    tmp_path: Path,
) -> None:
    _, placed = placed_splits(tmp_path / "data")
    trained = train(settings(), placed["train"], placed["validation"])
    losses = [log.train_loss for log in trained.history]
    assert len(losses) == 6
    assert losses[-1] < 0.7 * losses[0], losses
    assert 1 <= trained.best_epoch <= 6 and 0.0 <= trained.threshold <= 1.0
    kept = trained.history[trained.best_epoch - 1]
    assert kept.validation_auc == max(log.validation_auc for log in trained.history)

    weights = tmp_path / "model" / "model.pt"
    manifest = save_checkpoint(trained, settings(), weights, "site-test", "0.1.0", "synthetic")
    assert read_verified(weights) == manifest
    assert manifest.task == TASK and manifest.labels == ("normal", "abnormal")
    assert manifest.input_size == SIZE and manifest.heatmap == "gradcam"
    assert manifest.validated_for_clinical_use is False
    assert len(manifest.extra["history"]) == 6 and manifest.extra["best_epoch"] == kept.epoch

    engine = Predictor(weights, device="cpu")
    test = placed["test"]
    predictions = engine.predict([test.standardised(n) for n in range(len(test.labels))])
    scores = np.array([p.score for p in predictions])
    assert skm.roc_auc_score(test.labels, scores) >= 0.9
    assert all(p.heatmap.shape == SIZE and p.heatmap.max() <= 1.0 for p in predictions)

    # the reported score is the calibrated one; the class probabilities stay the network's
    assert manifest.calibration is not None and manifest.operating_point is not None
    assert manifest.operating_point.rule == "youden"
    assert manifest.operating_threshold == manifest.operating_point.threshold
    raw = np.array([p.probabilities[1] for p in predictions])
    assert scores == pytest.approx(manifest.calibration.apply(raw), abs=1e-6)
    assert not np.allclose(scores, raw, atol=1e-3)

    # the same weights under a manifest written before calibration: raw scores, as before
    old = json.loads(weights.with_suffix(".json").read_text())
    del old["calibration"], old["operating_point"]
    weights.with_suffix(".json").write_text(json.dumps(old))
    uncalibrated = Predictor(weights, device="cpu")
    assert uncalibrated.manifest.calibration is None
    before = uncalibrated.predict([test.standardised(n) for n in range(len(test.labels))])
    assert [p.score for p in before] == pytest.approx(raw.tolist(), abs=1e-6)
    assert [p.probabilities for p in before] == [p.probabilities for p in predictions]


def test_pretrained_weights_are_loaded_and_stay_frozen_until_fine_tuning(tmp_path: Path) -> None:
    torch.manual_seed(11)
    source = torchvision_classifier("resnet18")
    pretrained = tmp_path / "resnet18-local.pth"
    torch.save(source.state_dict(), pretrained)
    wanted = source.state_dict()

    network = BreastClassifier("resnet18", classes=2)
    assert load_pretrained_backbone(network, "resnet18", pretrained) == "torchvision state dict"
    assert torch.equal(network.backbone.state_dict()["0.weight"], wanted["conv1.weight"])
    assert torch.equal(
        network.backbone.state_dict()["4.1.bn2.running_var"], wanted["layer1.1.bn2.running_var"]
    )

    _, placed = placed_splits(tmp_path / "data", patients=8)
    seen: list[tuple[str, bool, bool]] = []

    def check(log: EpochLog, trained: BreastClassifier) -> None:
        backbone = trained.backbone.state_dict()
        weight_same = torch.equal(backbone["0.weight"].cpu(), wanted["conv1.weight"])
        stats_same = torch.equal(backbone["1.running_mean"].cpu(), wanted["bn1.running_mean"])
        seen.append((log.phase, weight_same, stats_same))

    trained = train(
        settings(pretrained=pretrained, frozen_epochs=2, epochs=1),
        placed["train"],
        placed["validation"],
        on_epoch=check,
    )
    assert seen == [("frozen", True, True), ("frozen", True, True), ("fine-tune", False, False)]
    assert trained.pretrained == "torchvision state dict"

    wrong = tmp_path / "resnet50.pth"
    torch.save(torchvision_classifier("resnet50").state_dict(), wrong)
    with pytest.raises(ValueError, match="not a resnet18 state dict"):
        load_pretrained_backbone(BreastClassifier("resnet18", classes=2), "resnet18", wrong)


def test_a_breastnode_checkpoint_can_be_the_starting_point(tmp_path: Path) -> None:
    earlier = BreastClassifier("resnet18", classes=3)
    path = tmp_path / "earlier.pt"
    torch.save(earlier.state_dict(), path)
    network = BreastClassifier("resnet18", classes=2)
    assert load_pretrained_backbone(network, "resnet18", path) == "breastnode checkpoint"
    for name, value in earlier.backbone.state_dict().items():
        assert torch.equal(network.backbone.state_dict()[name], value)


def test_early_stopping_ends_fine_tuning_when_validation_auc_stops_improving(
    tmp_path: Path,
) -> None:
    _, placed = placed_splits(tmp_path / "data", patients=8)
    # at rate 0 only batch-norm statistics move: the AUC soon stops improving
    frozen = settings(learning_rate=0.0, epochs=10, patience=2, augment=False)
    trained = train(frozen, placed["train"], placed["validation"])
    assert trained.stopped_early
    assert len(trained.history) == trained.best_epoch + 2 < 10


def test_class_balancing_by_weights_and_by_sampling() -> None:
    labels = np.array([0] * 90 + [1] * 10)
    weights = class_weights(labels, 2)
    assert weights == pytest.approx([100 / 180, 100 / 20])
    assert (weights[labels] * 1).sum() == pytest.approx(100.0)  # each class weighs half

    placed = PlacedSet(np.zeros((100, *SIZE), dtype=np.float16), labels, ())
    loader = _training_loader(settings(balance="sampler", augment=False), placed, weights)
    drawn = np.concatenate([batch_labels.numpy() for _, batch_labels in loader])
    assert 0.35 <= drawn.mean() <= 0.65  # about half minority, against 10% in the data
    plain = _training_loader(settings(balance="loss", augment=False), placed, weights)
    assert np.concatenate([b.numpy() for _, b in plain]).mean() == pytest.approx(0.1, abs=0.02)


def test_augmentation_is_seeded_keeps_the_grid_and_changes_the_image() -> None:
    image = torch.from_numpy(phantom_view(np.random.default_rng(0), "L", "CC", SIZE).image)[None]
    augment = Augmentation()
    first = augment(image, torch.Generator().manual_seed(5))
    again = augment(image, torch.Generator().manual_seed(5))
    other = augment(image, torch.Generator().manual_seed(6))
    assert first.shape == image.shape and torch.equal(first, again)
    assert not torch.equal(first, other) and not torch.allclose(first, image, atol=0.05)
    assert float(first.min()) >= 0.0 and float(first.max()) <= 1.0
    flipped = Augmentation(
        rotation_degrees=0,
        scale=(1, 1),
        zoom=(1, 1),
        vertical_flip=1.0,
        gamma=(1, 1),
        contrast=(1, 1),
    )(image, torch.Generator().manual_seed(0))
    assert torch.allclose(flipped, image.flip(-2), atol=1e-5)


def test_png_and_dicom_rows_reach_the_network_alike(tmp_path: Path) -> None:
    """A PNG and a DICOM file of the same right-breast pixels give the same model input
    (the DICOM one read by the node's own sources, MONOCHROME1 inverted there)."""
    phantom = phantom_view(np.random.default_rng(4), "R", "MLO", (128, 96), with_lesion=True)
    stored = to_stored_values(phantom.image)
    ds = mammogram(SyntheticPatient(), laterality="R", view="MLO", rows=128, columns=96)
    ds.PhotometricInterpretation = "MONOCHROME1"
    for window in ("WindowCenter", "WindowWidth"):  # the PNG has no window either
        if window in ds:
            delattr(ds, window)
    ds.PixelData = ((2**14 - 1) - stored).astype(np.uint16).tobytes()
    dicom = write(ds, tmp_path, "view.dcm")
    from PIL import Image

    Image.fromarray(stored).save(tmp_path / "view.png")
    rows = [
        Row(dicom, "P1", "S1", None, None, "abnormal"),  # laterality from the header
        Row(tmp_path / "view.png", "P1", "S1", "R", "MLO", "abnormal"),
    ]
    images = [load_image(r) for r in rows]
    assert images[0].laterality == "R" and images[0].view == "MLO"
    placed = place_rows(rows, [1, 1], SIZE)
    assert placed.geometries[0] == placed.geometries[1]
    assert placed.geometries[0].flipped  # right views are mirrored like in the node
    assert placed.geometries[0] == plan(images[0].image, "R", SIZE)
    difference = np.abs(placed.images[0].astype(float) - placed.images[1].astype(float))
    assert difference.max() < 0.01


def test_unusable_rows_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        load_image(Row(tmp_path / "missing.png", "P", "S", "L", "CC", "normal"))
    (tmp_path / "bad.png").write_bytes(b"not a picture")
    with pytest.raises(DatasetError, match="unreadable picture"):
        load_image(Row(tmp_path / "bad.png", "P", "S", "L", "CC", "normal"))
    tomo = mammogram(SyntheticPatient(), rows=32, columns=24)
    tomo.SOPClassUID = tomo.file_meta.MediaStorageSOPClassUID = UID(
        "1.2.840.10008.5.1.4.1.1.13.1.3"
    )
    tomo.SOPInstanceUID = tomo.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    tomo.NumberOfFrames = 20
    tomo.PixelData = np.zeros((20, 32, 24), dtype=np.uint16).tobytes()
    path = write(tomo, tmp_path, "tomo.dcm")
    with pytest.raises(DatasetError, match="a manifest row must be one image"):
        load_image(Row(path, "P", "S", "L", "CC", "normal"))


def test_settings_refuse_what_cannot_train() -> None:
    with pytest.raises(ValueError, match="unknown task"):
        TrainingSettings(task="no-such-task")
    with pytest.raises(ValueError, match="balance"):
        TrainingSettings(task=TASK, balance="smote")
    assert math.isclose(TrainingSettings(task=TASK).learning_rate, 1e-3)


def test_an_mr_study_folder_is_one_training_image_made_as_the_node_makes_it(
    tmp_path: Path,
) -> None:
    """A breast MRI row names a folder holding the study: the DCE pre/post pair is found by
    the node's own rules and projected to one image, left uncropped as in inference."""
    from pydicom.uid import generate_uid as uid

    from models.serving.sources import SourceOptions, study_sources

    patient, study = SyntheticPatient(), uid()
    folder = tmp_path / "mr-study"
    pre = mr_series(folder / "pre", patient, study, "SYN T1 PRE", acquisition_time="101000")
    post = mr_series(
        folder / "post", patient, study, "SYN T1 POST 1", enhancement=800,
        acquisition_time="102000",
    )  # fmt: skip
    image = load_image(Row(folder, "P1", "S1", None, None, "malignant"))
    expected = study_sources([*pre, *post], SourceOptions()).images[0]
    assert image.crop is False and image.crop == expected.crop
    assert np.array_equal(image.image, expected.image)
    placed = place_rows([Row(folder, "P1", "S1", None, None, "malignant")], [1], SIZE)
    assert placed.geometries[0] == plan(expected.image, expected.laterality, SIZE, crop=False)


def test_ordered_classes_keep_the_epoch_of_the_best_weighted_kappa() -> None:
    from models.training.fit import selection_score

    labels = np.array([0, 0, 1, 1, 2, 2])
    near = np.eye(3)[[0, 1, 1, 2, 2, 2]]  # each miss one class off
    far = np.eye(3)[[2, 0, 1, 1, 0, 2]]  # misses two classes off
    assert selection_score("density_fgd", labels, near, auc=0.1) > selection_score(
        "density_fgd", labels, far, auc=0.9
    )
    assert selection_score("normal_abnormal", labels, near, auc=0.7) == 0.7
    assert selection_score("normal_abnormal", labels, near, auc=float("nan")) == -1.0
