"""Scores that read as probabilities, and the threshold that acts on them.

A network's softmax is not a probability of disease: trained with class weights, early
stopping and few cases it is usually over- or under-confident. At the end of training the
score is calibrated on the validation split, by Platt scaling (a logistic curve on the
score's log-odds: two parameters, strictly increasing, so the ranking and the ROC AUC stay
the same) or isotonic regression (a free non-decreasing step curve: closer on large sets,
but it overfits small ones and ties scores). The one with the lower cross-validated Brier
score on the validation split is kept; isotonic is only a candidate from ``ISOTONIC_MIN``
cases on, and must beat Platt by a margin, because with few cases its in-fold fit is noise.

The operating threshold is then chosen on the calibrated validation scores by a rule:
Youden's J (the default), or a target sensitivity, specificity or recall rate.

Both are stored in the checkpoint manifest and applied by the inference engine with numpy
alone (no scikit-learn at inference).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

CALIBRATIONS = ("platt", "isotonic")
RULES = ("youden", "sensitivity", "specificity", "recall-rate")
ISOTONIC_MIN = 200  # validation cases before isotonic regression is considered at all
ISOTONIC_MARGIN = 0.95  # isotonic must reach 95% of Platt's Brier score or lower
FOLDS = 5
_EDGE = 1e-6  # scores are clipped to [_EDGE, 1 - _EDGE] before taking log-odds


@dataclass(frozen=True)
class Calibration:
    """A non-decreasing map from the network's score to a probability."""

    method: str  # "platt" or "isotonic"
    slope: float = 1.0  # platt: sigmoid(slope * logit(score) + intercept)
    intercept: float = 0.0
    knots: tuple[float, ...] = ()  # isotonic: scores ...
    values: tuple[float, ...] = ()  # ... and their probabilities, linear in between
    cases: int = 0  # validation cases it was fitted on
    brier: dict[str, float] = field(default_factory=dict)  # validation Brier per candidate
    reason: str = ""

    def __post_init__(self) -> None:
        if self.method not in CALIBRATIONS:
            raise ValueError(f"calibration method {self.method!r} is not one of {CALIBRATIONS}")
        if self.method == "platt" and not (math.isfinite(self.slope) and self.slope >= 0):
            raise ValueError("a Platt calibration needs a finite, non-negative slope")
        if self.method == "isotonic":
            knots, values = np.asarray(self.knots), np.asarray(self.values)
            if knots.size < 1 or knots.shape != values.shape:
                raise ValueError("an isotonic calibration needs as many values as knots")
            if np.any(np.diff(knots) < 0) or np.any(np.diff(values) < 0):
                raise ValueError("an isotonic calibration must be non-decreasing")
            if values.min() < 0 or values.max() > 1:
                raise ValueError("an isotonic calibration's values must be within [0, 1]")

    def apply(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for raw scores (float64, in [0, 1])."""
        raw = np.asarray(scores, dtype=np.float64)
        if self.method == "platt":
            return _sigmoid(self.slope * _logit(raw) + self.intercept)
        return np.asarray(np.interp(raw, np.asarray(self.knots), np.asarray(self.values)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        values = dict(data)
        values["knots"] = tuple(float(v) for v in values.get("knots", ()))
        values["values"] = tuple(float(v) for v in values.get("values", ()))
        return cls(**values)


def _logit(scores: np.ndarray) -> np.ndarray:
    clipped = np.clip(scores, _EDGE, 1.0 - _EDGE)
    return np.asarray(np.log(clipped / (1.0 - clipped)))


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * values)))  # no overflow for large |values|


def brier(truth: np.ndarray, probabilities: np.ndarray) -> float:
    return float(np.mean((np.asarray(probabilities, float) - np.asarray(truth, float)) ** 2))


def expected_calibration_error(
    truth: np.ndarray, probabilities: np.ndarray, bins: int = 10
) -> float:
    """Mean |observed rate - mean probability| over equal-width probability bins, weighted
    by the cases in each bin."""
    truth, probabilities = np.asarray(truth, float), np.asarray(probabilities, float)
    which = np.minimum((probabilities * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            error += members.mean() * abs(truth[members].mean() - probabilities[members].mean())
    return float(error)


def fit_platt(truth: np.ndarray, scores: np.ndarray) -> Calibration:
    """Platt scaling on the log-odds, with Platt's target smoothing ((N+ + 1) / (N+ + 2)
    for positives, 1 / (N- + 2) for negatives): with few, separable cases the curve stays
    finite instead of becoming a step."""
    from sklearn.linear_model import LogisticRegression

    truth = np.asarray(truth, dtype=int)
    positives, negatives = int(truth.sum()), int(truth.size - truth.sum())
    targets = np.where(truth == 1, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    feature = _logit(np.asarray(scores, dtype=np.float64))[:, None]
    # each case twice, as a positive weighted by its target and as a negative by the rest
    model = LogisticRegression(C=1e6, max_iter=1000)
    model.fit(
        np.vstack([feature, feature]),
        np.concatenate([np.ones(truth.size), np.zeros(truth.size)]),
        sample_weight=np.concatenate([targets, 1.0 - targets]),
    )
    slope = max(float(model.coef_[0, 0]), 0.0)  # a score that ranks backwards stays flat
    return Calibration("platt", slope=slope, intercept=float(model.intercept_[0]))


def fit_isotonic(truth: np.ndarray, scores: np.ndarray) -> Calibration:
    from sklearn.isotonic import IsotonicRegression

    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    model.fit(np.asarray(scores, dtype=np.float64), np.asarray(truth, dtype=np.float64))
    return Calibration(
        "isotonic",
        knots=tuple(float(v) for v in model.X_thresholds_),
        values=tuple(float(v) for v in model.y_thresholds_),
    )


def _cross_validated_brier(
    truth: np.ndarray, scores: np.ndarray, method: str, seed: int
) -> float | None:
    from sklearn.model_selection import StratifiedKFold

    folds = min(FOLDS, int(truth.sum()), int(truth.size - truth.sum()))
    if folds < 2:
        return None
    fit = fit_platt if method == "platt" else fit_isotonic
    predicted = np.empty(truth.size)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for inside, outside in splitter.split(scores, truth):
        if truth[inside].min() == truth[inside].max():
            return None
        predicted[outside] = fit(truth[inside], scores[inside]).apply(scores[outside])
    return brier(truth, predicted)


def fit_calibration(truth: np.ndarray, scores: np.ndarray, seed: int = 0) -> Calibration:
    """The calibration chosen on validation ``truth`` (0/1) and raw ``scores``; the choice
    and the Brier scores it rests on are recorded in the result."""
    truth = np.asarray(truth, dtype=int)
    scores = np.asarray(scores, dtype=np.float64)
    if truth.shape != scores.shape or truth.ndim != 1:
        raise ValueError("one score per case")
    if truth.min() == truth.max():
        raise ValueError("calibration needs positive and negative cases")
    figures = {"raw": round(brier(truth, scores), 6)}
    platt = _cross_validated_brier(truth, scores, "platt", seed)
    if platt is not None:
        figures["platt (cross-validated)"] = round(platt, 6)
    method, reason = (
        "platt",
        (
            f"Platt scaling: fewer than {ISOTONIC_MIN} validation cases, too few for isotonic "
            "regression"
        ),
    )
    if truth.size >= ISOTONIC_MIN and platt is not None:
        isotonic = _cross_validated_brier(truth, scores, "isotonic", seed)
        if isotonic is not None:
            figures["isotonic (cross-validated)"] = round(isotonic, 6)
            if isotonic < ISOTONIC_MARGIN * platt:
                method = "isotonic"
                reason = "isotonic regression: its cross-validated Brier score beats Platt's"
            else:
                reason = "Platt scaling: isotonic regression's cross-validated Brier score "
                reason += "does not beat it by 5%"
    chosen = (fit_isotonic if method == "isotonic" else fit_platt)(truth, scores)
    figures[f"{method} (fitted)"] = round(brier(truth, chosen.apply(scores)), 6)
    if method == "platt" and chosen.slope == 0.0:  # said, so nobody mistakes it for a model
        reason += (
            "; its slope came out 0 (the validation scores rank the cases backwards or not "
            "at all), so every case gets one score: this model ranks nothing"
        )
    return Calibration(
        method,
        chosen.slope,
        chosen.intercept,
        chosen.knots,
        chosen.values,
        cases=int(truth.size),
        brier=figures,
        reason=reason,
    )


@dataclass(frozen=True)
class OperatingRule:
    """How the operating threshold is chosen: ``youden`` or a target for ``sensitivity``
    (at least), ``specificity`` (at least) or ``recall-rate`` (at most: the share of all
    cases called positive)."""

    rule: str = "youden"
    target: float | None = None

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"operating point rule {self.rule!r} is not one of {RULES}")
        if (self.rule == "youden") != (self.target is None):
            raise ValueError("a target goes with sensitivity, specificity or recall-rate only")
        if self.target is not None and not 0.0 < self.target < 1.0:
            raise ValueError("an operating point's target must be between 0 and 1")

    def describe(self) -> str:
        if self.target is None:
            return "Youden's J (sensitivity + specificity - 1 at its largest)"
        bound = "at most" if self.rule == "recall-rate" else "at least"
        return f"{self.rule.replace('-', ' ')} {bound} {self.target:.2f}"


def parse_operating_point(text: str) -> OperatingRule:
    """``youden``, ``sensitivity=0.90``, ``specificity=0.90`` or ``recall-rate=0.10``."""
    example = "youden, sensitivity=0.90, specificity=0.90 or recall-rate=0.10"
    cleaned = text.strip().lower()
    if cleaned == "youden":
        return OperatingRule()
    rule, sign, number = cleaned.partition("=")
    rule = rule.strip().replace("_", "-")
    if not sign or rule not in RULES[1:]:
        raise ValueError(f"--operating-point {text!r}: give one of {example}")
    try:
        target = float(number)
    except ValueError:
        problem = f"{number.strip()!r} is not a number"
        raise ValueError(f"--operating-point {text!r}: {problem}") from None
    if not 0.0 < target < 1.0:
        raise ValueError(f"--operating-point {text!r}: the target is a fraction between 0 and 1")
    return OperatingRule(rule, target)


@dataclass(frozen=True)
class OperatingPoint:
    """The rule, the threshold it gave, and what it achieved on the validation split."""

    rule: str
    target: float | None
    threshold: float
    sensitivity: float
    specificity: float
    recall_rate: float
    cases: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OperatingPoint:
        point = cls(**data)
        OperatingRule(point.rule, point.target)  # the same checks as a rule given to train
        return point


def rates(truth: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[float, float, float]:
    """Sensitivity, specificity and recall rate when ``scores >= threshold`` is positive."""
    called = np.asarray(scores) >= threshold
    truth = np.asarray(truth, dtype=bool)
    return (
        float(called[truth].mean()) if truth.any() else float("nan"),
        float((~called[~truth]).mean()) if (~truth).any() else float("nan"),
        float(called.mean()),
    )


def choose_threshold(rule: OperatingRule, truth: np.ndarray, scores: np.ndarray) -> float:
    """The threshold in [0, 1] that ``rule`` picks on ``truth`` (0/1) and ``scores``:
    for a target, the best threshold that meets it (the highest one reaching the wanted
    sensitivity; the lowest one keeping the specificity or the recall rate)."""
    truth = np.asarray(truth, dtype=int)
    scores = np.asarray(scores, dtype=np.float64)
    if truth.min() == truth.max():
        return 0.5
    if rule.rule == "youden":
        from sklearn import metrics as skm

        false_positive, true_positive, thresholds = skm.roc_curve(truth, scores)
        best = int(np.argmax(true_positive - false_positive))
        return float(np.clip(thresholds[best], 0.0, 1.0))
    assert rule.target is not None
    above = min(float(np.nextafter(scores.max(), np.inf)), 1.0)
    candidates = np.append(np.unique(scores), above)  # ascending; the last calls none
    called = scores[None, :] >= candidates[:, None]
    positives, negatives = truth == 1, truth == 0
    sensitivity = called[:, positives].mean(axis=1)
    specificity = 1.0 - called[:, negatives].mean(axis=1)
    recall_rate = called.mean(axis=1)
    tolerance = 1e-9
    if rule.rule == "sensitivity":
        meets = np.flatnonzero(sensitivity >= rule.target - tolerance)
        return float(candidates[meets[-1]])  # the lowest score always meets it
    measure = specificity if rule.rule == "specificity" else 1.0 - recall_rate
    wanted = rule.target if rule.rule == "specificity" else 1.0 - rule.target
    meets = np.flatnonzero(measure >= wanted - tolerance)
    return float(candidates[meets[0]]) if meets.size else float(candidates[-1])


def operating_point(rule: OperatingRule, truth: np.ndarray, scores: np.ndarray) -> OperatingPoint:
    threshold = choose_threshold(rule, truth, scores)
    sensitivity, specificity, recall_rate = rates(truth, scores, threshold)
    return OperatingPoint(
        rule.rule,
        rule.target,
        threshold,
        round(sensitivity, 6),
        round(specificity, 6),
        round(recall_rate, 6),
        int(np.asarray(truth).size),
    )
