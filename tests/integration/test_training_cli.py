"""Training and evaluation from the command line, on SYNTHETIC data in the layout of a public
dataset (mini-MIAS's label file, phantom images) and on studies stored in the node: a
manifest, a split by patient, a checkpoint the node runs as configured, and a report whose
figures match scikit-learn's on the same predictions."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn import metrics as skm

from models.synthetic import SyntheticPatient, screening_study
from models.synthetic.phantoms import phantom_view
from models.training.dataset import Row, read_manifest, write_manifest
from models.training.training_data import load_image
from node.cli.training import assign_splits
from node.config import load_settings
from node.errors import NodeError
from storage.db import open_index
from storage.filestore import FileStore
from tests.support.cli import breastnode, models_config
from tests.support.stored import store_dataset

pytestmark = pytest.mark.timeout(900)

WOMEN = 16


def mias_layout(folder: Path) -> tuple[Path, Path]:
    """mini-MIAS's files, drawn here: mdbNNN.png (8-bit phantoms; odd right, even left) and
    a labels.csv in its columns. Every other woman has a lesion in one breast."""
    images = folder / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(1)
    lines = ["Name,Background Tissue,Abnormality,Type,x,y,r"]
    for number in range(1, 2 * WOMEN + 1):
        side = "R" if number % 2 else "L"
        lesion = ((number + 1) // 2) % 2 == 0 and side == "L"
        phantom = phantom_view(rng, side, "MLO", (128, 96), with_lesion=lesion)
        name = f"mdb{number:03d}"
        Image.fromarray(np.round(phantom.image * 255).astype(np.uint8)).save(images / f"{name}.png")
        if lesion and phantom.lesion is not None:
            centre = phantom.lesion.center
            malignancy = "M" if number % 8 == 0 else "B"
            lines.append(f"{name},F,CIRC,{malignancy},{centre.column:.0f},{128 - centre.row:.0f},8")
        else:
            lines.append(f"{name},F,NORM,,,,")
    labels = folder / "labels.csv"
    labels.write_text("\n".join(lines) + "\n")
    return labels, images


def test_dataset_train_evaluate_and_the_node_runs_the_checkpoint(tmp_path: Path) -> None:
    config = models_config(tmp_path)
    labels, images = mias_layout(tmp_path / "mias")
    manifest = tmp_path / "work" / "manifest.csv"
    made = breastnode(
        config, "models", "dataset", "mini-mias", str(labels), "--images", str(images),
        "--task", "normal_abnormal", "--output", str(manifest),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert f"{2 * WOMEN} images of {WOMEN} patients (abnormal 8, normal 24)" in made.stdout

    output = tmp_path / "work" / "model"
    trained = breastnode(
        config, "models", "train", str(manifest), "--task", "normal_abnormal",
        "--output", str(output), "--size", "64x48", "--epochs", "6", "--no-progress",
        "--fractions", "0.5,0.25,0.25", "--name", "synthetic-site", "--seed", "2",
        "--operating-point", "sensitivity=0.90",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert "NOT VALIDATED FOR CLINICAL USE" in trained.stdout
    assert "operating point sensitivity at least 0.90: validation sensitivity 1.000" in (
        trained.stdout
    )  # 0.90 of a few positives is all of them
    # the annotated manifest starts with the patch stage, whose backbone is then frozen
    # for the head's first epochs (the per-epoch log)
    assert "patch epoch 1:" in trained.stderr and "epoch 1 (frozen): loss" in trained.stderr
    weights = output / "model.pt"
    written = json.loads((output / "model.json").read_text())
    point = written["operating_point"]
    assert (point["rule"], point["target"]) == ("sensitivity", 0.9)
    assert point["threshold"] == written["operating_threshold"] and point["sensitivity"] >= 0.9
    assert written["calibration"]["method"] == "platt"  # a handful of validation images
    assert written["extra"]["threshold_rule"] == (
        "sensitivity at least 0.90 on the validation split, calibrated scores"
    )
    log = [json.loads(line) for line in (output / "training-log.jsonl").read_text().splitlines()]
    assert [entry["epoch"] for entry in log] == list(range(1, 3 + 7))  # 3 frozen, 6 more
    assert len(written["extra"]["patch_stage"]["history"]) == 8  # the recipe's patch epochs
    assert written["extra"]["pretrained"].startswith("patch stage")

    split = read_manifest(output / "split.csv", "normal_abnormal")
    assert len(split) == 2 * WOMEN and all(row.split for row in split)
    sides = {}
    for row in split:
        assert sides.setdefault(row.patient_id, row.split) == row.split  # one side per woman
    assert {row.split for row in split} == {"train", "validation", "test"}

    report = tmp_path / "work" / "report"
    evaluated = breastnode(
        config, "models", "evaluate", str(weights), str(output / "split.csv"),
        "--output", str(report), "--bootstrap", "100", "--smote", "--no-progress",
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr
    assert "NOT VALIDATED" in evaluated.stdout
    figures = json.loads((report / "figures.json").read_text())
    test_rows = [row for row in split if row.split == "test"]
    predictions = figures["predictions"]
    assert [p["truth"] for p in predictions] == [row.label for row in test_rows]
    truth = np.array([p["truth"] == "abnormal" for p in predictions])
    scores = np.array([p["score"] for p in predictions])
    assert figures["binary"]["roc_auc"]["value"] == pytest.approx(
        skm.roc_auc_score(truth, scores), abs=1e-6
    )
    threshold = figures["model"]["operating_threshold"]
    assert figures["binary"]["recall"]["value"] == pytest.approx(
        skm.recall_score(truth, scores >= threshold), abs=1e-6
    )
    assert {b["name"] for b in figures["baselines"]} == {
        "logistic regression", "SVM (RBF)", "k-nearest neighbours", "decision tree",
    }  # fmt: skip
    assert all(b["smote"] for b in figures["baselines"])
    assert len(figures["training_history"]) == 9  # 3 frozen + 6 fine-tuning epochs
    shown = figures["operating_point"]
    assert (shown["rule"], shown["target"], shown["threshold"]) == ("sensitivity", 0.9, threshold)
    assert shown["validation"]["sensitivity"] == point["sensitivity"]
    assert shown["test"]["sensitivity"] == figures["binary"]["recall"]
    assert shown["test"]["recall_rate"]["value"] == pytest.approx(np.mean(scores >= threshold))
    assert figures["calibration"]["method"]["method"] == "platt"
    page = (report / "report.html").read_text()
    assert "Operating point and calibration" in page
    assert "Operating point: sensitivity at least 0.90 on the validation split" in page
    assert "Scores calibrated on the validation split" in page and "Platt scaling" in page
    assert page.count('src="data:image/png;base64,') == 5
    assert "NOT VALIDATED - NOT FOR CLINICAL USE" in page and "logistic regression" in page
    for plot in ("roc", "precision-recall", "confusion", "training", "heatmaps"):
        with Image.open(report / f"{plot}.png") as picture:
            assert picture.width > 200 and picture.height > 200

    # the node runs the trained checkpoint as configured, like any other
    (tmp_path / "node").mkdir()
    node_config = models_config(tmp_path / "node", f'mammography = "{weights}"')
    shown = breastnode(node_config, "models", "show")
    assert shown.returncode == 0 and '"task": "normal_abnormal"' in shown.stdout
    settings = load_settings(node_config)
    engine, _ = open_index(settings.database_url)
    study = screening_study(SyntheticPatient(), rows=128, columns=96)
    for ds in study:
        store_dataset(engine, FileStore(settings.storage_root), ds)
    engine.dispose()
    analysed = breastnode(node_config, "analyse", str(study[0].StudyInstanceUID), "--json")
    assert analysed.returncode == 0, analysed.stderr
    result = json.loads(analysed.stdout)
    assert result["model"]["name"] == "synthetic-site"
    assert result["model"]["validated_for_clinical_use"] is False
    assert {b["laterality"] for b in result["breasts"]} == {"L", "R"}


def test_stored_studies_become_a_manifest_with_pseudonymous_patients(tmp_path: Path) -> None:
    config = models_config(tmp_path)
    settings = load_settings(config)
    engine, _ = open_index(settings.database_url)
    store = FileStore(settings.storage_root)
    first, second = SyntheticPatient(), SyntheticPatient()
    studies = [screening_study(first), screening_study(second), screening_study(first)]
    for study in studies:
        for ds in study:
            store_dataset(engine, store, ds)
    engine.dispose()
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["study_instance_uid", "label", "laterality"])
        writer.writerow([studies[0][0].StudyInstanceUID, "abnormal", "L"])
        writer.writerow([studies[1][0].StudyInstanceUID, "normal", ""])
        writer.writerow([studies[2][0].StudyInstanceUID, "normal", ""])
        writer.writerow(["1.2.3.999", "normal", ""])
    manifest = tmp_path / "stored.csv"
    made = breastnode(
        config, "models", "dataset", "node", str(labels), "--task", "normal_abnormal",
        "--output", str(manifest),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "left out 1: study not in the store" in made.stdout
    assert "left out 2: image of the other breast" in made.stdout
    rows = read_manifest(manifest, "normal_abnormal")
    assert [(r.laterality, r.label) for r in rows[:2]] == [("L", "abnormal")] * 2
    assert len(rows) == 2 + 4 + 4
    patients = [r.patient_id for r in rows]
    assert patients[0] == patients[-1] != patients[2]  # the same woman, two studies
    text = manifest.read_text()
    assert first.patient_id not in text and second.patient_id not in text
    assert all(r.path.is_file() for r in rows)
    assert load_image(rows[0]).laterality == "L"


def test_a_manifest_s_own_test_split_is_kept_and_the_rest_split_by_patient() -> None:
    rows = [
        Row(Path(f"{n}.png"), f"P{n // 2}", f"S{n // 2}", "L", "CC",
            "abnormal" if n % 6 == 0 else "normal", "test" if n < 8 else None)
        for n in range(60)
    ]  # fmt: skip
    assigned = assign_splits(rows, "normal_abnormal", (0.7, 0.15, 0.15), seed=4)
    assert [r.split for r in assigned[:8]] == ["test"] * 8
    assert {r.split for r in assigned[8:]} == {"train", "validation"}
    by_patient: dict[str, set[str | None]] = {}
    for row in assigned:
        by_patient.setdefault(row.patient_id, set()).add(row.split)
    assert all(len(splits) == 1 for splits in by_patient.values())


def test_a_bad_manifest_is_one_clear_line_not_a_traceback(tmp_path: Path) -> None:
    config = models_config(tmp_path)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,patient_id,label\na.png,P1,normal\nb.png,P2,suspicious\n")
    trained = breastnode(
        config, "models", "train", str(manifest), "--task", "normal_abnormal",
        "--output", str(tmp_path / "out"),
    )  # fmt: skip
    assert trained.returncode == 1
    assert "row 3: label 'suspicious' is not a class of task 'normal_abnormal'" in trained.stderr
    assert "Traceback" not in trained.stderr
    missing = tmp_path / "images.csv"
    missing.write_text("path,patient_id,label\n" + "".join(
        f"gone-{n}.png,P{n},{'abnormal' if n % 2 else 'normal'}\n" for n in range(12)
    ))  # fmt: skip
    trained = breastnode(
        config, "models", "train", str(missing), "--task", "normal_abnormal",
        "--output", str(tmp_path / "out"),
    )  # fmt: skip
    assert trained.returncode == 1 and "gone-" in trained.stderr and "not found" in trained.stderr
    assert "Traceback" not in trained.stderr
    for text, message in [
        ("sens=0.9", "--operating-point 'sens=0.9': give one of youden, sensitivity=0.90"),
        ("specificity=90", "the target is a fraction between 0 and 1"),
    ]:
        trained = breastnode(
            config, "models", "train", str(missing), "--task", "normal_abnormal",
            "--output", str(tmp_path / "out"), "--operating-point", text,
        )  # fmt: skip
        assert trained.returncode == 1 and message in trained.stderr
        assert "Traceback" not in trained.stderr


def test_hand_set_train_and_validation_splits_are_kept() -> None:
    rows = [
        Row(Path(f"{n}.png"), f"P{n // 2}", f"S{n // 2}", "L", "CC",
            "abnormal" if n % 4 == 0 else "normal", ("train", "validation")[n // 2 % 2])
        for n in range(8)
    ] + [Row(Path("x.png"), "P0", "S0", "R", "CC", "normal", None)]  # fmt: skip
    assigned = assign_splits(rows, "normal_abnormal", (0.7, 0.15, 0.15), seed=4)
    assert [r.split for r in assigned] == [r.split for r in rows[:8]] + ["train"]
    clash = [*rows, Row(Path("y.png"), "P0", "S0", "R", "MLO", "normal", "test")]
    with pytest.raises(NodeError, match="two splits"):
        assign_splits(clash, "normal_abnormal", (0.7, 0.15, 0.15), seed=4)


def test_relative_image_paths_survive_a_manifest_written_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.png").write_bytes(b"")
    rows = [Row(Path("data/a.png"), "P1", "S1", "L", "CC", "normal")]
    write_manifest(tmp_path / "run" / "split.csv", rows)
    again = read_manifest(tmp_path / "run" / "split.csv", "normal_abnormal")
    assert again[0].path.resolve() == (tmp_path / "data" / "a.png").resolve()
