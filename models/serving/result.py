"""What a model hands over for one study: plain typed data (numpy, no DICOM, no torch).

Coordinates are in the source image's pixel grid as (column, row), zero-based at the centre
of the top-left pixel, which is what DICOM SCOORD (2D) uses too. Frames are one-based, as in
DICOM. Heatmaps are float arrays in [0, 1] with the source image's rows and columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np


class Category(StrEnum):
    NORMAL = "normal"
    BENIGN = "benign"
    SUSPICIOUS = "suspicious for malignancy"


class Shape(StrEnum):
    POINT = "point"
    ELLIPSE = "ellipse"
    POLYGON = "polygon"


@dataclass(frozen=True)
class Point:
    column: float
    row: float


@dataclass(frozen=True)
class Region:
    """A point; an ellipse by the end points of its major then minor axis (as DICOM
    ELLIPSE); or a closed polygon (first point not repeated)."""

    shape: Shape
    points: tuple[Point, ...]

    def __post_init__(self) -> None:
        expected = {Shape.POINT: 1, Shape.ELLIPSE: 4}.get(self.shape)
        if expected is not None and len(self.points) != expected:
            raise ValueError(f"a {self.shape} region has {expected} point(s)")
        if self.shape is Shape.POLYGON and len(self.points) < 3:
            raise ValueError("a polygon region has at least 3 points")

    @classmethod
    def point(cls, column: float, row: float) -> Region:
        return cls(Shape.POINT, (Point(column, row),))

    @classmethod
    def ellipse(
        cls, center: Point, semi_major: float, semi_minor: float, angle_degrees: float = 0.0
    ) -> Region:
        """An ellipse whose major axis makes ``angle_degrees`` with the row direction."""
        if semi_minor <= 0 or semi_major < semi_minor:
            raise ValueError("need semi_major >= semi_minor > 0")
        a = math.radians(angle_degrees)
        dc, dr = math.cos(a), math.sin(a)
        return cls(
            Shape.ELLIPSE,
            (
                Point(center.column - semi_major * dc, center.row - semi_major * dr),
                Point(center.column + semi_major * dc, center.row + semi_major * dr),
                Point(center.column + semi_minor * dr, center.row - semi_minor * dc),
                Point(center.column - semi_minor * dr, center.row + semi_minor * dc),
            ),
        )

    @classmethod
    def polygon(cls, points: list[Point]) -> Region:
        return cls(Shape.POLYGON, tuple(points))

    @property
    def center(self) -> Point:
        if self.shape is Shape.ELLIPSE:
            first, second = self.points[0], self.points[1]
            return Point((first.column + second.column) / 2, (first.row + second.row) / 2)
        columns = [p.column for p in self.points]
        rows = [p.row for p in self.points]
        return Point(sum(columns) / len(columns), sum(rows) / len(rows))


def _check_score(score: float, what: str) -> None:
    if not 0.0 <= score <= 1.0 or math.isnan(score):
        raise ValueError(f"{what} must be within [0, 1], got {score}")


@dataclass(frozen=True)
class Finding:
    kind: str  # e.g. "mass", "calcification cluster", "suspicious region"
    score: float
    region: Region
    frame: int | None = None  # tomosynthesis and MRI: the frame or slice (1-based) it is on
    # The breast the finding is in, when its image shows both (the MRI projection); an image
    # of one breast gives its own laterality.
    laterality: str | None = None

    def __post_init__(self) -> None:
        _check_score(self.score, "a finding's score")
        if self.frame is not None and self.frame < 1:
            raise ValueError("frames are numbered from 1")
        if self.laterality not in {None, "L", "R"}:
            raise ValueError("laterality is L, R or None")


@dataclass(frozen=True)
class ImageResult:
    """One analysed image: a source instance, or for MRI the projection shown in its place."""

    sop_instance_uid: str
    heatmap: np.ndarray
    findings: tuple[Finding, ...] = ()
    laterality: str | None = None  # "L" or "R"
    view: str | None = None  # "CC", "MLO", ...
    frame: int | None = None  # tomosynthesis: the frame or slab centre the heatmap belongs to
    # MRI: the maximum intensity projection the model used, in the source pixel grid; the
    # overlay shows it instead of the source slice.
    display_image: np.ndarray | None = field(default=None, compare=False)
    # 2D images: the display values the model read as 8-bit grey, on the source pixel grid
    # (the image as a viewer shows it), so that an overlay need not window the source again;
    # 8-bit, a quarter of the float values, because results wait for their objects in batches.
    display_grey: np.ndarray | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.heatmap.ndim != 2:
            raise ValueError("a heatmap is a 2D array")
        if self.heatmap.size and (np.nanmin(self.heatmap) < 0 or np.nanmax(self.heatmap) > 1):
            raise ValueError("heatmap values must be within [0, 1]")
        if self.laterality not in {None, "L", "R"}:
            raise ValueError("laterality is L, R or None")
        for shown in (self.display_image, self.display_grey):
            if shown is not None and shown.shape != self.heatmap.shape:
                raise ValueError("the display image and the heatmap must have one shape")


LESION_TYPES = ("mass", "calcification", "architectural distortion", "asymmetry")
# what a finding of each lesion type is called in the node's results (``Finding.kind``, the
# key of the SR coded concepts): a calcification a network marks is a cluster, not one speck
FINDING_KIND_OF_TYPE = {
    "mass": "mass",
    "calcification": "calcification cluster",
    "architectural distortion": "architectural distortion",
    "asymmetry": "asymmetry",
}
COMPOSITIONS = ("a", "b", "c", "d")  # BI-RADS breast composition categories


@dataclass(frozen=True)
class BreastResult:
    laterality: str
    score: float
    category: Category
    birads: int | None = None  # BI-RADS-style assessment 0-6, when the model gives one
    # BI-RADS breast composition a-d (a: almost entirely fat ... d: extremely dense), when a
    # density model assessed the breast
    composition: str | None = None

    def __post_init__(self) -> None:
        _check_score(self.score, "a breast score")
        if self.laterality not in {"L", "R"}:
            raise ValueError("laterality is L or R")
        if self.birads is not None and not 0 <= self.birads <= 6:
            raise ValueError("BI-RADS assessments are 0 to 6")
        if self.composition not in {None, *COMPOSITIONS}:
            raise ValueError(f"breast composition is one of {', '.join(COMPOSITIONS)}")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    validated_for_clinical_use: bool
    operating_threshold: float
    manufacturer: str = "BreastNode"
    # the finding kinds the model tells apart (``Finding.kind``: "mass", "calcification
    # cluster", ...); () when its findings are of one generic kind
    finding_kinds: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_score(self.operating_threshold, "the operating threshold")


@dataclass(frozen=True)
class StudyResult:
    study_instance_uid: str
    images: tuple[ImageResult, ...]
    breasts: tuple[BreastResult, ...]
    overall_score: float
    model: ModelInfo

    def __post_init__(self) -> None:
        _check_score(self.overall_score, "the study score")
        lateralities = [b.laterality for b in self.breasts]
        if len(set(lateralities)) != len(lateralities):
            raise ValueError("one result per breast")
