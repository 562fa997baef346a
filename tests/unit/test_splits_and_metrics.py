"""Patient-level splits and the evaluation figures (checked against scikit-learn and against
hand-counted cases)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from models.training.metrics import binary_report, multiclass_report, sensitivity_at_specificity
from models.training.splits import split_by_patient


def dataset(seed: int = 0) -> tuple[list[str], list[int]]:
    """120 women, 2-4 images each; about a third with an abnormal image."""
    rng = np.random.default_rng(seed)
    patients, labels = [], []
    for woman in range(120):
        abnormal = rng.random() < 0.33
        for image in range(int(rng.integers(2, 5))):
            patients.append(f"W{woman:03d}")
            labels.append(int(abnormal and image == 0))
    return patients, labels


def test_no_patient_is_on_both_sides_of_a_split() -> None:
    patients, labels = dataset()
    split = split_by_patient(patients, labels, seed=7)
    sides = [{patients[i] for i in rows} for rows in (split.train, split.validation, split.test)]
    assert not (sides[0] & sides[1]) and not (sides[0] & sides[2]) and not (sides[1] & sides[2])
    assert sorted(split.train + split.validation + split.test) == list(range(len(patients)))
    # stratified by the patient's label: each split holds abnormal patients in proportion
    abnormal = {p for p, label in zip(patients, labels, strict=True) if label}
    shares = [len(side & abnormal) / len(side) for side in sides]
    overall = len(abnormal) / len(set(patients))
    assert all(abs(share - overall) < 0.1 for share in shares), shares
    assert len(sides[0]) == pytest.approx(0.7 * 120, abs=2)


def test_splits_are_fixed_by_the_seed() -> None:
    patients, labels = dataset()
    assert split_by_patient(patients, labels, seed=3) == split_by_patient(patients, labels, seed=3)
    assert split_by_patient(patients, labels, seed=3) != split_by_patient(patients, labels, seed=4)
    with pytest.raises(ValueError, match="fractions"):
        split_by_patient(patients, labels, fractions=(0.5, 0.5, 0.5))


def test_binary_report_matches_scikit_learn_and_counts() -> None:
    truth = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.2, 0.7, 0.8, 0.4, 0.9])
    report = binary_report(truth, scores, threshold=0.5, rounds=200)
    # by hand: TN 5, FP 1 (0.6), FN 1 (0.4), TP 3
    assert report.confusion == ((5, 1), (1, 3))
    assert report.accuracy.value == pytest.approx(0.8)
    assert report.precision.value == pytest.approx(0.75)
    assert report.recall.value == pytest.approx(0.75)
    assert report.specificity.value == pytest.approx(5 / 6)
    assert report.f1.value == pytest.approx(0.75)
    assert report.roc_auc.value == pytest.approx(skm.roc_auc_score(truth, scores))
    assert report.pr_auc.value == pytest.approx(skm.average_precision_score(truth, scores))
    for estimate in (report.accuracy, report.roc_auc, report.f1):
        assert estimate.low <= estimate.value <= estimate.high
        assert estimate.high - estimate.low > 0  # ten cases: the interval is wide, not a point
    assert (report.cases, report.positives) == (10, 4)


def test_sensitivity_at_specificity() -> None:
    truth = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.8, 0.4, 0.7, 0.9, 0.95])
    # specificity 1.0 allows no false positive: threshold above 0.8 catches 0.9 and 0.95
    assert sensitivity_at_specificity(truth, scores, 1.0) == pytest.approx(0.5)
    # specificity 0.75 allows one false positive (the 0.8 negative): at 0.4 every positive
    assert sensitivity_at_specificity(truth, scores, 0.75) == pytest.approx(1.0)


def test_one_class_only_is_refused() -> None:
    with pytest.raises(ValueError, match="both classes"):
        binary_report(np.zeros(5), np.linspace(0, 1, 5))


def test_multiclass_figures_match_scikit_learn_on_fixed_predictions() -> None:
    rng = np.random.default_rng(9)
    truth = rng.integers(0, 3, 120)
    logits = rng.normal(size=(120, 3)) + 1.5 * np.eye(3)[truth]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = ("BI-RADS 1", "BI-RADS 2", "BI-RADS 3")
    report = multiclass_report(truth, probabilities, labels, rounds=200, seed=1)
    predicted = probabilities.argmax(axis=1)
    assert report.accuracy.value == pytest.approx(skm.accuracy_score(truth, predicted))
    assert report.macro_f1.value == pytest.approx(skm.f1_score(truth, predicted, average="macro"))
    assert report.confusion == tuple(map(tuple, skm.confusion_matrix(truth, predicted).tolist()))
    precision, recall, f1, support = skm.precision_recall_fscore_support(truth, predicted)
    for k, figures in enumerate(report.per_class):
        assert figures.label == labels[k] and figures.support == support[k]
        assert (figures.precision, figures.recall, figures.f1) == pytest.approx(
            (precision[k], recall[k], f1[k])
        )
        assert figures.roc_auc is not None and figures.pr_auc is not None
        assert figures.roc_auc.value == pytest.approx(
            skm.roc_auc_score(truth == k, probabilities[:, k])
        )
        assert figures.pr_auc.value == pytest.approx(
            skm.average_precision_score(truth == k, probabilities[:, k])
        )
        assert figures.roc_auc.low <= figures.roc_auc.value <= figures.roc_auc.high


def test_a_class_absent_from_the_cases_has_no_auc_rather_than_a_made_up_one() -> None:
    truth = np.array([0, 0, 1, 1, 0, 1])
    probabilities = np.tile([0.5, 0.3, 0.2], (6, 1))
    report = multiclass_report(truth, probabilities, ("a", "b", "c"), rounds=50)
    assert report.per_class[2].support == 0 and report.per_class[2].roc_auc is None


def test_weighted_kappa_costs_a_far_miss_more_than_a_near_one() -> None:
    """Density classes are ordered: calling d for a costs more than calling b for a."""
    truth = np.array([0, 0, 1, 1, 2, 2, 3, 3] * 5)
    near = truth.copy()
    near[0] = 1  # one a called b
    far = truth.copy()
    far[0] = 3  # one a called d
    labels = ("a", "b", "c", "d")
    one_hot = np.eye(4)
    perfect = multiclass_report(truth, one_hot[truth], labels, rounds=50)
    near_report = multiclass_report(truth, one_hot[near], labels, rounds=50)
    far_report = multiclass_report(truth, one_hot[far], labels, rounds=50)
    assert perfect.weighted_kappa is not None and perfect.weighted_kappa.value == 1.0
    assert near_report.weighted_kappa is not None and far_report.weighted_kappa is not None
    assert 1.0 > near_report.weighted_kappa.value > far_report.weighted_kappa.value
    # the same accuracy either way: only the kappa tells the two apart
    assert near_report.accuracy.value == far_report.accuracy.value
