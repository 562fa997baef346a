"""Free-response ROC: how many lesions the marks find against how many false marks they cost.

A radiologist judges a CAD system by its marks, not by one score per image, so detection is
measured per lesion: lesion sensitivity at 0.25, 0.5, 1 and 2 false marks per image (the
operating points CAD papers report). A mark is a hit when its centre lies within a lesion
(inside its circle or box) or within the lesion's radius of the lesion's centre; each lesion
is found once (its best-scoring hit), and a mark that hits nothing is a false mark. Images
without lesions count in the per-image denominator, as they do in screening.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

FALSE_MARKS_PER_IMAGE = (0.25, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class Mark:
    """A finding's centre (column, row) and score."""

    column: float
    row: float
    score: float


@dataclass(frozen=True)
class Lesion:
    """A lesion's centre and its reach: the radius of a circle, or half the diagonal of a
    box (``box`` then also counts a mark inside it as a hit)."""

    column: float
    row: float
    radius: float
    box: tuple[float, float, float, float] | None = None  # left, top, right, bottom

    def hit_by(self, mark: Mark) -> bool:
        if self.box is not None:
            left, top, right, bottom = self.box
            if left <= mark.column <= right and top <= mark.row <= bottom:
                return True
        return math.hypot(mark.column - self.column, mark.row - self.row) <= self.radius


@dataclass(frozen=True)
class ImageMarks:
    marks: Sequence[Mark]
    lesions: Sequence[Lesion]


@dataclass(frozen=True)
class Froc:
    """The curve (false marks per image, lesion sensitivity), ordered by falling threshold,
    and the sensitivity at each of ``FALSE_MARKS_PER_IMAGE``."""

    false_marks_per_image: np.ndarray
    sensitivity: np.ndarray
    thresholds: np.ndarray
    at: dict[float, float]
    lesions: int
    images: int


def froc(images: Sequence[ImageMarks]) -> Froc:
    """The FROC of ``images``. Every mark is either the first hit on a lesion (a true
    mark), or a false mark; a second mark on a found lesion is neither (it neither finds
    anything new nor marks healthy tissue), as in the usual CAD evaluation."""
    if not images:
        raise ValueError("FROC needs at least one image")
    lesions = sum(len(i.lesions) for i in images)
    if lesions == 0:
        raise ValueError("FROC needs at least one annotated lesion")
    events: list[tuple[float, int]] = []  # (score, +1 lesion found | 0 false mark)
    for image in images:
        best: dict[int, float] = {}
        for mark in image.marks:
            hit = [n for n, lesion in enumerate(image.lesions) if lesion.hit_by(mark)]
            if not hit:
                events.append((mark.score, 0))
            for n in hit:
                best[n] = max(best.get(n, -math.inf), mark.score)
        events.extend((score, 1) for score in best.values())
    events.sort(key=lambda e: -e[0])
    scores = np.array([e[0] for e in events], dtype=np.float64)
    found = np.cumsum([e[1] for e in events], dtype=np.float64)
    false = np.cumsum([1 - e[1] for e in events], dtype=np.float64)
    # one point per distinct threshold: the last event of each run of equal scores
    last = np.r_[scores[1:] != scores[:-1], True] if scores.size else np.array([], bool)
    fppi = np.r_[0.0, false[last] / len(images)]
    sensitivity = np.r_[0.0, found[last] / lesions]
    thresholds = np.r_[np.inf, scores[last]]
    at = {rate: sensitivity_at(fppi, sensitivity, rate) for rate in FALSE_MARKS_PER_IMAGE}
    return Froc(fppi, sensitivity, thresholds, at, lesions, len(images))


def sensitivity_at(fppi: np.ndarray, sensitivity: np.ndarray, rate: float) -> float:
    """The best lesion sensitivity with at most ``rate`` false marks per image (a step
    function: no interpolation between thresholds that do not exist)."""
    allowed = fppi <= rate + 1e-12
    return float(sensitivity[allowed].max()) if allowed.any() else 0.0
