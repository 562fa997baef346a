"""The site audit's figures against counts worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from models.training.site_audit import (
    AuditCase,
    at_target_recall,
    figures,
    site_audit,
    threshold_for_recall,
)


def twenty_screens() -> list[AuditCase]:
    """20 screens: 2 cancers called (TP), 1 missed (FN), 3 false alarms (FP), 14 TN.
    Scores rank every cancer above every other screen but one false alarm (0.95)."""
    cases = [
        AuditCase(0.90, True, True, recalled=True, month="2024-01", density="b"),
        AuditCase(0.80, True, True, recalled=False, month="2024-02", density="c"),
        AuditCase(0.40, False, True, recalled=True, month="2024-02", density="c"),
        AuditCase(0.95, True, False, recalled=False, month="2024-01", density="b"),
        AuditCase(0.70, True, False, recalled=True, month="2024-01", density="c"),
        AuditCase(0.60, True, False, recalled=False, month="2024-02", density="b"),
    ]
    for n in range(14):
        month = "2024-01" if n < 7 else "2024-02"
        cases.append(AuditCase(0.01 * n, False, False, recalled=False, month=month))
    return cases


def test_hand_counted_figures() -> None:
    audit = site_audit(twenty_screens(), target_recall=0.10, rounds=200)
    o = audit.overall
    assert (o.screens, o.positives, o.cancers) == (20, 5, 3)
    assert o.confusion == ((14, 3), (1, 2))
    assert o.recall_rate.value == pytest.approx(5 / 20)
    assert o.cdr_per_1000.value == pytest.approx(100.0)  # 2 cancers detected in 20 screens
    assert o.ppv1 is not None and o.ppv1.value == pytest.approx(2 / 5)
    assert o.sensitivity is not None and o.sensitivity.value == pytest.approx(2 / 3)
    assert o.specificity is not None and o.specificity.value == pytest.approx(14 / 17)
    # pairs of (cancer, other) out of 3 x 17 where the cancer scores higher: 0.90 and 0.80
    # beat all but 0.95 (16 each), 0.40 beats only the 14 true negatives
    assert o.roc_auc is not None and o.roc_auc.value == pytest.approx((16 + 16 + 14) / 51)
    for e in (o.recall_rate, o.ppv1, o.sensitivity, o.specificity, o.roc_auc):
        assert e.low <= e.value <= e.high
    assert o.recall_rate.low < o.recall_rate.high  # the bootstrap moved something
    assert audit.operating_range == (0.40, 0.60)


def test_auc_matches_scikit_learn_with_ties() -> None:
    rng = np.random.default_rng(3)
    cancer = rng.random(300) < 0.2
    scores = np.round(rng.random(300) + cancer * 0.3, 1)  # many ties
    result = figures(cancer, scores >= 0.7, scores, rounds=10)
    assert result.roc_auc is not None
    assert result.roc_auc.value == pytest.approx(skm.roc_auc_score(cancer, scores))


def test_by_month_and_density_and_readers() -> None:
    audit = site_audit(twenty_screens(), rounds=50)
    assert list(audit.by_month) == ["2024-01", "2024-02"]
    january = audit.by_month["2024-01"]
    assert (january.screens, january.positives, january.cancers) == (10, 3, 1)
    february = audit.by_month["2024-02"]
    assert february.confusion == ((7, 1), (1, 1))
    assert list(audit.by_density) == ["b", "c"]  # screens without density are in no group
    assert audit.by_density["c"].cancers == 2
    readers = audit.readers
    assert readers is not None and readers.roc_auc is None
    assert readers.recall_rate.value == pytest.approx(3 / 20)
    assert readers.confusion == ((16, 1), (1, 2))


def test_undefined_figures_are_none_not_zero() -> None:
    result = figures(np.array([False, False]), np.array([False, False]), np.array([0.1, 0.2]))
    assert result.ppv1 is None and result.sensitivity is None and result.roc_auc is None
    assert result.specificity is not None and result.specificity.value == 1.0
    assert result.cdr_per_1000.value == 0.0


def test_threshold_for_a_target_recall_rate() -> None:
    scores = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.4] + [0.01 * n for n in range(14)])
    assert threshold_for_recall(scores, 0.10) == pytest.approx(0.9)  # 2 of 20 at >= 0.9
    assert threshold_for_recall(scores, 0.12) == pytest.approx(0.9)  # 3 of 20 would exceed
    assert threshold_for_recall(scores, 0.25) == pytest.approx(0.6)
    assert threshold_for_recall(scores, 0.0) > 0.95  # nobody recalled
    tied = np.array([0.5, 0.5, 0.5, 0.1])
    assert threshold_for_recall(tied, 0.5) > 0.5  # the tie would recall 75%
    cancer = np.array([True, True, False, True, False, False] + [False] * 14)
    at = at_target_recall(cancer, scores, 0.10, rounds=100, seed=1)
    assert at.recall_rate == pytest.approx(0.10)
    assert at.sensitivity == pytest.approx(2 / 3)
    assert at.cdr_per_1000 == pytest.approx(100.0)
    assert at.threshold.low <= at.threshold.value <= at.threshold.high


def test_no_screens_is_an_error() -> None:
    with pytest.raises(ValueError):
        site_audit([])
    with pytest.raises(ValueError):
        threshold_for_recall(np.array([0.5]), 1.5)
