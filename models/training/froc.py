"""Free-response ROC: how many lesions the marks find against how many false marks they cost.

A radiologist judges a CAD system by its marks, not by one score per image, so detection is
measured per lesion: lesion sensitivity at 0.25, 0.5, 1 and 2 false marks per image (the
operating points CAD papers report). A mark is a hit when its centre lies within a lesion
(inside its circle or box) or within the lesion's radius of the lesion's centre; each lesion
is found once (its best-scoring hit), and a mark that hits nothing is a false mark. Images
without lesions count in the per-image denominator, as they do in screening.

Breakdowns say where the marks work and where they fail: per lesion type (a model that finds
masses but no calcifications has one curve in the overall figure and two in practice) the
lesions are those of the type while the false marks stay those of all images, since a false
mark has no type; per breast density each group is its own set of images (dense tissue hides
lesions and makes false marks). Groups without a lesion have no sensitivity and are left out;
every group says how many lesions it holds, so a figure from three lesions reads as such.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.serving.result import LESION_TYPES

FALSE_MARKS_PER_IMAGE = (0.25, 0.5, 1.0, 2.0)
UNSPECIFIED = "unspecified"  # the type of a lesion its dataset gives none


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
    kind: str | None = None  # one of LESION_TYPES; None where the annotation gives none

    @property
    def type_name(self) -> str:
        return self.kind or UNSPECIFIED

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
    density: str | None = None  # the breast's density class, where known


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
    return _froc(images, None)


def froc_by_lesion_type(images: Sequence[ImageMarks]) -> dict[str, Froc]:
    """One FROC per lesion type present (LESION_TYPES order, then ``UNSPECIFIED``): that
    type's lesions against the false marks of all images. A mark on a lesion of another type
    is neither found nor false here, as it is no false mark in the overall curve."""
    present = {lesion.type_name for image in images for lesion in image.lesions}
    order = [*LESION_TYPES, UNSPECIFIED, *sorted(present - {*LESION_TYPES, UNSPECIFIED})]
    return {kind: _froc(images, kind) for kind in order if kind in present}


def froc_by_density(images: Sequence[ImageMarks], order: Sequence[str] = ()) -> dict[str, Froc]:
    """One FROC per density class whose images hold a lesion, over that class's images
    alone (false marks per image of that density); images without a density are in none.
    Classes come in ``order``, any others after it alphabetically."""
    groups: dict[str, list[ImageMarks]] = {}
    for image in images:
        if image.density is not None:
            groups.setdefault(image.density, []).append(image)
    names = [*(d for d in order if d in groups), *sorted(set(groups) - set(order))]
    return {
        name: froc(groups[name]) for name in names if any(image.lesions for image in groups[name])
    }


def _froc(images: Sequence[ImageMarks], kind: str | None) -> Froc:
    """The FROC of the lesions of type ``kind`` (None: all); found lesions of other types
    are dropped, their marks being neither finds nor false marks."""

    def counted(lesion: Lesion) -> bool:
        return kind is None or lesion.type_name == kind

    if not images:
        raise ValueError("FROC needs at least one image")
    lesions = sum(counted(lesion) for image in images for lesion in image.lesions)
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
        events.extend((score, 1) for n, score in best.items() if counted(image.lesions[n]))
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
