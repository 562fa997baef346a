"""Evaluate a checkpoint on labelled test images: the node's own engine scores them (the
checkpoint is loaded and verified exactly as in service), then the figures a site needs to
judge it: binary figures for the node's score (the task's positive classes against the
rest) at the checkpoint's operating threshold, per-class figures, baselines on the CNN's
pooled features, and a few example heatmaps with the annotated lesions and the model's marks
beside them. The operating point's test figures
(sensitivity, specificity, recall rate with their intervals) are the binary figures at that
threshold; with a calibrated checkpoint the scores are calibrated, and the Brier score and
calibration error say how well they read as probabilities on the test split.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from models.serving.calibration import brier, expected_calibration_error
from models.serving.checkpoint import Manifest
from models.serving.inference import Predictor, positive_cases, positive_score
from models.serving.networks import BreastClassifier
from models.training.baselines import BaselineScores, fit_baselines
from models.training.dataset import Row, label_index
from models.training.froc import Froc, Lesion, Mark
from models.training.localisation import Localisation, lesions_in_model, localisation, marks_of
from models.training.metrics import BinaryReport, MulticlassReport, binary_report, multiclass_report
from models.training.training_data import PlacedSet, place_rows

logger = logging.getLogger(__name__)

EXAMPLES = 8  # heatmaps shown: the highest- and lowest-scoring positive and negative cases


@dataclass(frozen=True)
class Example:
    image: np.ndarray  # model grid, display values
    heatmap: np.ndarray  # model grid, [0, 1]
    truth: str
    score: float
    # the row's annotated lesions in the model grid, rasterised (1 = lesion) for their
    # outline and as FROC lesions to tell found from missed; None and () without annotations
    lesion_mask: np.ndarray | None = None
    lesions: tuple[Lesion, ...] = ()
    marks: tuple[Mark, ...] = ()  # the model's marks on the image, as the FROC counts them

    def found(self) -> int:
        """How many of the lesions a mark hits."""
        return sum(any(lesion.hit_by(mark) for mark in self.marks) for lesion in self.lesions)


@dataclass(frozen=True)
class BaselineFigures:
    name: str
    smote: bool
    binary: BinaryReport
    multiclass: MulticlassReport
    scores: np.ndarray


@dataclass
class Evaluation:
    manifest: Manifest
    truth: np.ndarray  # class indices
    probabilities: np.ndarray  # (cases, classes)
    scores: np.ndarray  # the node's score per case
    binary: BinaryReport
    multiclass: MulticlassReport
    patients: int
    examples: list[Example] = field(default_factory=list)
    baselines: list[BaselineFigures] = field(default_factory=list)
    # lesion detection against the test rows' annotations (None: the rows carry none)
    localisation: Localisation | None = None

    @property
    def froc(self) -> Froc | None:
        return self.localisation.froc if self.localisation else None

    @property
    def positive_truth(self) -> np.ndarray:
        return positive_cases(self.manifest.task, self.truth)

    def calibration_figures(self) -> dict[str, float]:
        """Brier score and expected calibration error on these cases, of the network's own
        score (its positive classes' probability) and of the score reported; the two are
        the same for an uncalibrated checkpoint. (With a saliency head the reported score
        also carries the map's peak, so "network" is the classifier's share alone.)"""
        truth = self.positive_truth
        network = positive_score(self.manifest.task, self.probabilities)
        return {
            "brier_network": round(brier(truth, network), 6),
            "brier_reported": round(brier(truth, self.scores), 6),
            "ece_network": round(expected_calibration_error(truth, network), 6),
            "ece_reported": round(expected_calibration_error(truth, self.scores), 6),
        }


def evaluate(
    weights: Path,
    test_rows: Sequence[Row],
    train_rows: Sequence[Row] = (),
    device: str = "auto",
    target_specificity: float = 0.9,
    rounds: int = 1000,
    smote: bool = False,
    seed: int = 0,
    cache: Path | None = None,
    progress: bool = False,
) -> Evaluation:
    """Score ``test_rows`` with the checkpoint; baselines when ``train_rows`` are given."""
    engine = Predictor(weights, device=device, batch_size=16)
    task = engine.manifest.task
    truth = np.asarray(label_index(task, test_rows))

    def placed(rows: Sequence[Row], labels: np.ndarray, name: str) -> PlacedSet:
        where = cache / f"{name}.npy" if cache else None
        return place_rows(rows, labels, engine.working_size, where, progress, f"{name} images")

    test = placed(test_rows, truth, "test")
    probabilities, scores = _predict(engine, test)
    positives = positive_cases(task, truth)
    if positives.min() == positives.max():
        raise ValueError("the test cases need both positive and negative cases")
    evaluation = Evaluation(
        manifest=engine.manifest,
        truth=truth,
        probabilities=probabilities,
        scores=scores,
        binary=binary_report(
            positives, scores, engine.manifest.operating_threshold, target_specificity, rounds, seed
        ),
        multiclass=multiclass_report(truth, probabilities, engine.manifest.labels, rounds, seed),
        patients=len({row.patient_id for row in test_rows}),
        examples=_examples(engine, test, test_rows, positives, scores),
        localisation=localisation(engine, test, test_rows),
    )
    if train_rows:
        train_truth = np.asarray(label_index(task, train_rows))
        train = placed(train_rows, train_truth, "train")
        network, on = engine.network, engine.device
        found = fit_baselines(
            pooled_features(network, train, on),
            train_truth,
            pooled_features(network, test, on),
            len(engine.manifest.labels),
            smote=smote,
            seed=seed,
        )
        evaluation.baselines = [
            _baseline_figures(b, task, evaluation, target_specificity, rounds, seed) for b in found
        ]
    return evaluation


def _predict(engine: Predictor, placed: PlacedSet) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities and the node's scores through the engine (heatmaps are not kept:
    a few thousand working-size maps would take gigabytes; the examples are run again)."""
    probabilities, scores = [], []
    for _, batch in placed.batches(engine.batch_size):
        for prediction in engine.predict(list(batch)):
            probabilities.append(prediction.probabilities)
            scores.append(prediction.score)
    return np.asarray(probabilities), np.asarray(scores)


def _examples(
    engine: Predictor,
    placed: PlacedSet,
    rows: Sequence[Row],
    positives: np.ndarray,
    scores: np.ndarray,
) -> list[Example]:
    chosen = _example_indices(positives, scores)
    predictions = engine.predict([placed.standardised(n) for n in chosen])
    return [
        Example(
            placed.images[n].astype(np.float32),
            p.heatmap,
            rows[n].label,
            float(scores[n]),
            _lesion_mask(placed, n),
            tuple(lesions_in_model(rows[n], placed.geometries[n])),
            tuple(marks_of(p)),
        )
        for n, p in zip(chosen, predictions, strict=True)
    ]


def _lesion_mask(placed: PlacedSet, index: int) -> np.ndarray | None:
    if placed.masks is None or placed.annotated is None or not placed.annotated[index]:
        return None
    return np.array(placed.masks[index], dtype=np.uint8)  # a copy: the set may be memory-mapped


def pooled_features(
    network: BreastClassifier, placed: PlacedSet, device: torch.device, batch_size: int = 32
) -> np.ndarray:
    """The backbone's globally averaged last stage per image: what the head reads."""
    network.eval()
    features = []
    with torch.no_grad():
        for _, batch in placed.batches(batch_size):
            images = torch.from_numpy(batch)[:, None].expand(-1, 3, -1, -1).to(device)
            features.append(network.backbone(images).float().mean(dim=(2, 3)).cpu().numpy())
    return np.concatenate(features)


def _example_indices(positives: np.ndarray, scores: np.ndarray) -> list[int]:
    """The best- and worst-scored cases of each kind: true and missed positives, true and
    false alarms among negatives, so the grid shows both what works and what fails."""
    chosen: list[int] = []
    quarter = EXAMPLES // 4
    for kind in (1, 0):
        members = np.flatnonzero(positives == kind)
        ranked = members[np.argsort(-scores[members], kind="stable")]
        for n in [*ranked[:quarter], *ranked[::-1][:quarter]]:
            if int(n) not in chosen:
                chosen.append(int(n))
    return chosen


def _baseline_figures(
    baseline: BaselineScores,
    task: str,
    evaluation: Evaluation,
    target_specificity: float,
    rounds: int,
    seed: int,
) -> BaselineFigures:
    labels = evaluation.manifest.labels
    scores = positive_score(task, baseline.probabilities)
    return BaselineFigures(
        name=baseline.name,
        smote=baseline.smote,
        binary=binary_report(
            evaluation.positive_truth, scores, 0.5, target_specificity, rounds, seed
        ),
        multiclass=multiclass_report(
            evaluation.truth, baseline.probabilities, labels, rounds, seed
        ),
        scores=scores,
    )
