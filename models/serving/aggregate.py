"""From view scores to breast and study scores and categories.

A breast's score combines its CC and MLO views (the mean, so one view's false alarm counts
half while a lesion seen in both counts fully); the study's score is its worse breast's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from models.serving.result import BreastResult, Category


def breast_score(view_scores: Sequence[float]) -> float:
    if not view_scores:
        raise ValueError("a breast score needs at least one view")
    return float(sum(view_scores) / len(view_scores))


def category(score: float, threshold: float, benign_floor: float = 0.5) -> Category:
    """Suspicious at or above the operating threshold; benign between half of it and it."""
    if score >= threshold:
        return Category.SUSPICIOUS
    if score >= threshold * benign_floor:
        return Category.BENIGN
    return Category.NORMAL


def breasts(views: Mapping[str, Sequence[float]], threshold: float) -> tuple[BreastResult, ...]:
    """``views``: laterality -> the scores of that breast's views."""
    results = []
    for side in sorted(views):
        score = breast_score(views[side])
        results.append(BreastResult(side, round(score, 4), category(score, threshold)))
    return tuple(results)


def study_score(breast_results: Sequence[BreastResult]) -> float:
    return max((b.score for b in breast_results), default=0.0)
