"""Evaluation figures for a classifier's scores, with bootstrap 95% confidence intervals.

The metric definitions are scikit-learn's (the reference a reader can check against); what
this adds is the bootstrap over cases, sensitivity at a chosen specificity, and one typed
record of everything a report shows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float  # 2.5th percentile of the bootstrap
    high: float  # 97.5th percentile of the bootstrap


@dataclass(frozen=True)
class BinaryReport:
    threshold: float
    accuracy: Estimate
    precision: Estimate
    recall: Estimate  # sensitivity
    specificity: Estimate
    f1: Estimate
    roc_auc: Estimate
    pr_auc: Estimate  # average precision
    sensitivity_at_specificity: Estimate
    target_specificity: float
    confusion: tuple[tuple[int, int], tuple[int, int]]  # [[TN, FP], [FN, TP]]
    cases: int
    positives: int
    # the share of all cases called positive at the threshold (a screening site's recall
    # rate when the cases are screening exams)
    recall_rate: Estimate | None = None


def sensitivity_at_specificity(truth: np.ndarray, scores: np.ndarray, specificity: float) -> float:
    """The highest sensitivity among operating points whose specificity is at least
    ``specificity`` (from the ROC curve)."""
    false_positive_rate, true_positive_rate, _ = skm.roc_curve(truth, scores)
    allowed = true_positive_rate[false_positive_rate <= 1.0 - specificity + 1e-12]
    return float(allowed.max()) if allowed.size else 0.0


def _roc_auc(truth: np.ndarray, scores: np.ndarray) -> float:
    return float(skm.roc_auc_score(truth, scores))


def _pr_auc(truth: np.ndarray, scores: np.ndarray) -> float:
    return float(skm.average_precision_score(truth, scores))


def _bootstrap(
    truth: np.ndarray,
    scores: np.ndarray,
    metric: Callable[[np.ndarray, np.ndarray], float],
    rounds: int,
    rng: np.random.Generator,
) -> Estimate:
    value = metric(truth, scores)
    samples = []
    for _ in range(rounds):
        pick = rng.integers(0, len(truth), len(truth))
        if truth[pick].min() == truth[pick].max():  # one class only: undefined, skip
            continue
        sample = metric(truth[pick], scores[pick])
        if not np.isnan(sample):  # undefined in this resample (no predicted positive)
            samples.append(sample)
    if not samples:
        return Estimate(value, value, value)
    low, high = np.percentile(samples, [2.5, 97.5])
    return Estimate(float(value), float(low), float(high))


def binary_report(
    truth: np.ndarray,
    scores: np.ndarray,
    threshold: float = 0.5,
    target_specificity: float = 0.9,
    rounds: int = 1000,
    seed: int = 0,
) -> BinaryReport:
    """``truth``: 0/1 per case; ``scores``: the positive class's probability per case."""
    truth = np.asarray(truth, dtype=int)
    scores = np.asarray(scores, dtype=float)
    if truth.shape != scores.shape or truth.ndim != 1:
        raise ValueError("one score per case")
    if set(np.unique(truth)) != {0, 1}:
        raise ValueError("a binary report needs both classes among the cases")
    rng = np.random.default_rng(seed)

    def at_threshold(
        function: Callable[..., float], **options: object
    ) -> Callable[[np.ndarray, np.ndarray], float]:
        return lambda t, s: float(function(t, s >= threshold, **options))

    def specificity(t: np.ndarray, s: np.ndarray) -> float:
        return float(skm.recall_score(t, s >= threshold, pos_label=0, zero_division=0))

    matrix = skm.confusion_matrix(truth, scores >= threshold, labels=[0, 1])
    return BinaryReport(
        threshold=threshold,
        accuracy=_bootstrap(truth, scores, at_threshold(skm.accuracy_score), rounds, rng),
        precision=_bootstrap(  # undefined (NaN) with no positive call
            truth, scores, at_threshold(skm.precision_score, zero_division=np.nan), rounds, rng
        ),
        recall=_bootstrap(
            truth, scores, at_threshold(skm.recall_score, zero_division=0), rounds, rng
        ),
        specificity=_bootstrap(truth, scores, specificity, rounds, rng),
        f1=_bootstrap(truth, scores, at_threshold(skm.f1_score, zero_division=0), rounds, rng),
        roc_auc=_bootstrap(truth, scores, _roc_auc, rounds, rng),
        pr_auc=_bootstrap(truth, scores, _pr_auc, rounds, rng),
        sensitivity_at_specificity=_bootstrap(
            truth,
            scores,
            lambda t, s: sensitivity_at_specificity(t, s, target_specificity),
            rounds,
            rng,
        ),
        target_specificity=target_specificity,
        confusion=(
            (int(matrix[0, 0]), int(matrix[0, 1])),
            (int(matrix[1, 0]), int(matrix[1, 1])),
        ),
        cases=int(truth.size),
        positives=int(truth.sum()),
        # drawn last, so the other intervals are the ones reported before it was added
        recall_rate=_bootstrap(
            truth, scores, lambda t, s: float(np.mean(s >= threshold)), rounds, rng
        ),
    )


@dataclass(frozen=True)
class ClassFigures:
    """One class against the rest."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int  # cases of this class
    roc_auc: Estimate | None  # None when the class is absent from the cases
    pr_auc: Estimate | None


@dataclass(frozen=True)
class MulticlassReport:
    labels: tuple[str, ...]
    accuracy: Estimate
    macro_f1: Estimate
    per_class: tuple[ClassFigures, ...]
    confusion: tuple[tuple[int, ...], ...]  # rows: truth, columns: predicted
    cases: int
    # Cohen's kappa with quadratic weights: for ordered classes (density, BI-RADS) a miss by
    # two categories costs more than a miss by one; None with a single class among the cases
    weighted_kappa: Estimate | None = None


def multiclass_report(
    truth: np.ndarray,
    probabilities: np.ndarray,
    labels: tuple[str, ...],
    rounds: int = 1000,
    seed: int = 0,
) -> MulticlassReport:
    """Figures per class (one against the rest) and overall, for argmax predictions;
    ``probabilities`` is (cases, classes) in the order of ``labels``."""
    truth = np.asarray(truth, dtype=int)
    probabilities = np.asarray(probabilities, dtype=float)
    if probabilities.shape != (truth.size, len(labels)):
        raise ValueError("one row of class probabilities per case")
    rng = np.random.default_rng(seed)
    predicted = probabilities.argmax(axis=1)
    classes = list(range(len(labels)))
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        truth, predicted, labels=classes, zero_division=0
    )
    per_class = []
    for k, label in enumerate(labels):
        members = (truth == k).astype(int)
        present = 0 < members.sum() < members.size
        per_class.append(
            ClassFigures(
                label=label,
                precision=float(precision[k]),
                recall=float(recall[k]),
                f1=float(f1[k]),
                support=int(support[k]),
                roc_auc=_bootstrap(members, probabilities[:, k], _roc_auc, rounds, rng)
                if present
                else None,
                pr_auc=_bootstrap(members, probabilities[:, k], _pr_auc, rounds, rng)
                if present
                else None,
            )
        )
    matrix = skm.confusion_matrix(truth, predicted, labels=classes)
    return MulticlassReport(
        labels=labels,
        accuracy=_bootstrap(
            truth, predicted, lambda t, p: float(skm.accuracy_score(t, p)), rounds, rng
        ),
        macro_f1=_bootstrap(
            truth,
            predicted,
            lambda t, p: float(  # over the classes among the cases: an absent one is no 0
                skm.f1_score(t, p, labels=np.unique(t), average="macro", zero_division=0)
            ),
            rounds,
            rng,
        ),
        per_class=tuple(per_class),
        confusion=tuple(tuple(int(v) for v in line) for line in matrix),
        cases=int(truth.size),
        # drawn last, so the estimates above keep their resamples
        weighted_kappa=_bootstrap(truth, predicted, _weighted_kappa, rounds, rng)
        if np.unique(truth).size > 1
        else None,
    )


def _weighted_kappa(truth: np.ndarray, predicted: np.ndarray) -> float:
    if np.unique(np.concatenate([truth, predicted])).size < 2:
        return 1.0  # a resample of one class, predicted as that class: full agreement
    return float(skm.cohen_kappa_score(truth, predicted, weights="quadratic"))
