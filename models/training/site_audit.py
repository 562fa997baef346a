"""A site's own audit of the model (ACR BI-RADS medical audit figures) from its outcomes.

Pure computation on plain records: the node joins its stored study results with the
outcomes a site exports and hands each screen over as an :class:`AuditCase`; no DICOM, no
database, no identifiers (a case carries none, so nothing here can leak one).

Definitions (ACR BI-RADS Atlas, follow-up and outcome monitoring), a screen being positive
when the model's category is at or above its operating threshold (suspicious):

- recall rate = positive screens / all screens
- cancer detection rate (CDR) = cancers among positive screens per 1,000 screens
- PPV1 = cancers among positive screens / positive screens
- sensitivity = TP / (TP + FN), specificity = TN / (TN + FP)

Confidence intervals are 95% percentile bootstraps that resample screens (studies), so
every figure of one resample comes from the same screens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from models.training.metrics import Estimate

BOOTSTRAP_ROUNDS = 1000
Metric = Callable[[np.ndarray, np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class AuditCase:
    """One screen: the model's study score and call, and what the site later knew."""

    score: float
    positive: bool  # the model's category at or above its operating threshold
    cancer: bool  # cancer diagnosed (biopsy-proven) within the site's follow-up interval
    recalled: bool | None = None  # the site's own readers recalled the woman
    month: str | None = None  # YYYY-MM of the screen
    density: str | None = None  # breast composition, as the site or the model gives it


@dataclass(frozen=True)
class AuditFigures:
    screens: int
    positives: int
    cancers: int
    confusion: tuple[tuple[int, int], tuple[int, int]]  # [[TN, FP], [FN, TP]]
    recall_rate: Estimate
    cdr_per_1000: Estimate
    ppv1: Estimate | None  # None: no positive screen
    sensitivity: Estimate | None  # None: no cancer
    specificity: Estimate | None  # None: no screen without cancer
    roc_auc: Estimate | None  # None: one class only, or no scores (the readers' calls)


@dataclass(frozen=True)
class RecallThreshold:
    """The lowest score threshold whose recall rate does not exceed the target."""

    target: float
    threshold: Estimate
    recall_rate: float
    sensitivity: float | None
    specificity: float | None
    cdr_per_1000: float


@dataclass(frozen=True)
class SiteAudit:
    overall: AuditFigures
    readers: AuditFigures | None  # the site's own recalls, when the outcomes say them
    by_month: dict[str, AuditFigures]
    by_density: dict[str, AuditFigures]
    at_target_recall: RecallThreshold
    operating_range: tuple[float | None, float | None]  # (highest negative, lowest positive)
    rounds: int


def _recall_rate(_c: np.ndarray, p: np.ndarray, _s: np.ndarray) -> float:
    return float(p.mean())


def _cdr(c: np.ndarray, p: np.ndarray, _s: np.ndarray) -> float:
    return float((c & p).sum() * 1000.0 / c.size)


def _ppv1(c: np.ndarray, p: np.ndarray, _s: np.ndarray) -> float:
    return float((c & p).sum() / p.sum()) if p.any() else float("nan")


def _sensitivity(c: np.ndarray, p: np.ndarray, _s: np.ndarray) -> float:
    return float((c & p).sum() / c.sum()) if c.any() else float("nan")


def _specificity(c: np.ndarray, p: np.ndarray, _s: np.ndarray) -> float:
    negatives = ~c
    return float((negatives & ~p).sum() / negatives.sum()) if negatives.any() else float("nan")


def _auc(c: np.ndarray, _p: np.ndarray, s: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic (ties count half): what scikit-learn's
    ``roc_auc_score`` gives, at a fraction of its cost inside the bootstrap."""
    if c.all() or not c.any() or np.isnan(s).any():
        return float("nan")
    cancers = int(c.sum())
    others = c.size - cancers
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse]  # 1-based, ties averaged
    return float((ranks[c].sum() - cancers * (cancers + 1) / 2) / (cancers * others))


METRICS: dict[str, Metric] = {
    "recall_rate": _recall_rate,
    "cdr_per_1000": _cdr,
    "ppv1": _ppv1,
    "sensitivity": _sensitivity,
    "specificity": _specificity,
    "roc_auc": _auc,
}


def _estimates(
    cancer: np.ndarray, positive: np.ndarray, scores: np.ndarray, rounds: int, seed: int
) -> dict[str, Estimate | None]:
    """Each metric with its percentile bootstrap interval; None where it is undefined on the
    screens themselves. Resamples where a metric is undefined are left out of its interval."""
    values = {name: metric(cancer, positive, scores) for name, metric in METRICS.items()}
    samples: dict[str, list[float]] = {name: [] for name in METRICS}
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        pick = rng.integers(0, cancer.size, cancer.size)
        c, p, s = cancer[pick], positive[pick], scores[pick]
        for name, metric in METRICS.items():
            if not np.isnan(values[name]):
                sample = metric(c, p, s)
                if not np.isnan(sample):
                    samples[name].append(sample)
    estimates: dict[str, Estimate | None] = {}
    for name, value in values.items():
        if np.isnan(value):
            estimates[name] = None
        elif samples[name]:
            low, high = np.percentile(samples[name], [2.5, 97.5])
            estimates[name] = Estimate(value, float(low), float(high))
        else:
            estimates[name] = Estimate(value, value, value)
    return estimates


def figures(
    cancer: np.ndarray,
    positive: np.ndarray,
    scores: np.ndarray | None = None,
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
) -> AuditFigures:
    """The audit figures of a set of screens (``scores`` None: calls without scores, as a
    site's readers make them, so no ROC AUC)."""
    cancer, positive = np.asarray(cancer, bool), np.asarray(positive, bool)
    if cancer.size == 0 or cancer.shape != positive.shape:
        raise ValueError("need one call per screen, and at least one screen")
    values = np.full(cancer.size, np.nan) if scores is None else np.asarray(scores, float)
    e = _estimates(cancer, positive, values, rounds, seed)
    tp = int((cancer & positive).sum())
    fp = int((~cancer & positive).sum())
    fn = int((cancer & ~positive).sum())
    tn = int((~cancer & ~positive).sum())
    recall_rate, cdr = e["recall_rate"], e["cdr_per_1000"]
    assert recall_rate is not None and cdr is not None  # defined on any screens
    return AuditFigures(
        screens=int(cancer.size),
        positives=int(positive.sum()),
        cancers=int(cancer.sum()),
        confusion=((tn, fp), (fn, tp)),
        recall_rate=recall_rate,
        cdr_per_1000=cdr,
        ppv1=e["ppv1"],
        sensitivity=e["sensitivity"],
        specificity=e["specificity"],
        roc_auc=e["roc_auc"],
    )


def threshold_for_recall(scores: np.ndarray, target: float) -> float:
    """The lowest threshold t (a screen is positive when its score >= t) whose recall rate
    is at most ``target``; above the highest score when even it alone would exceed it."""
    if not 0.0 <= target <= 1.0:
        raise ValueError("a target recall rate is within [0, 1]")
    scores = np.asarray(scores, float)
    chosen = float(np.nextafter(scores.max(), np.inf))
    for candidate in np.unique(scores)[::-1]:  # highest first: recall grows as t falls
        if (scores >= candidate).mean() > target + 1e-12:
            break
        chosen = float(candidate)
    return chosen


def at_target_recall(
    cancer: np.ndarray, scores: np.ndarray, target: float, rounds: int, seed: int
) -> RecallThreshold:
    """The threshold for ``target`` (with a bootstrap interval of where it falls) and what
    the screens would have given at it."""
    cancer, scores = np.asarray(cancer, bool), np.asarray(scores, float)
    threshold = threshold_for_recall(scores, target)
    positive = scores >= threshold
    rng = np.random.default_rng(seed)
    samples = [
        threshold_for_recall(scores[pick], target)
        for pick in (rng.integers(0, scores.size, scores.size) for _ in range(rounds))
    ]
    low, high = np.percentile(samples, [2.5, 97.5]) if samples else (threshold, threshold)
    sensitivity = _sensitivity(cancer, positive, scores)
    specificity = _specificity(cancer, positive, scores)
    return RecallThreshold(
        target=target,
        threshold=Estimate(threshold, float(low), float(high)),
        recall_rate=_recall_rate(cancer, positive, scores),
        sensitivity=None if np.isnan(sensitivity) else sensitivity,
        specificity=None if np.isnan(specificity) else specificity,
        cdr_per_1000=_cdr(cancer, positive, scores),
    )


def _groups(
    cases: Sequence[AuditCase], key: Callable[[AuditCase], str | None]
) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for number, case in enumerate(cases):
        value = key(case)
        if value:
            groups.setdefault(value, []).append(number)
    return dict(sorted(groups.items()))


def site_audit(
    cases: Sequence[AuditCase],
    target_recall: float = 0.10,
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
) -> SiteAudit:
    """The whole audit: overall, by month (drift), by density, the site's readers when the
    outcomes say who was recalled, and the threshold for a target recall rate."""
    if not cases:
        raise ValueError("an audit needs at least one screen with an outcome")
    cancer = np.array([c.cancer for c in cases], bool)
    positive = np.array([c.positive for c in cases], bool)
    scores = np.array([c.score for c in cases], float)

    def subset(members: list[int]) -> AuditFigures:
        return figures(cancer[members], positive[members], scores[members], rounds, seed)

    readers = None
    called = [n for n, c in enumerate(cases) if c.recalled is not None]
    if called:
        recalled = np.array([bool(cases[n].recalled) for n in called], bool)
        readers = figures(cancer[called], recalled, None, rounds, seed)
    negatives, positives = scores[~positive], scores[positive]
    return SiteAudit(
        overall=figures(cancer, positive, scores, rounds, seed),
        readers=readers,
        by_month={k: subset(v) for k, v in _groups(cases, lambda c: c.month).items()},
        by_density={k: subset(v) for k, v in _groups(cases, lambda c: c.density).items()},
        at_target_recall=at_target_recall(cancer, scores, target_recall, rounds, seed),
        operating_range=(
            float(negatives.max()) if negatives.size else None,
            float(positives.min()) if positives.size else None,
        ),
        rounds=rounds,
    )
