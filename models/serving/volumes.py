"""Tomosynthesis slabs and breast MRI projections: 3D data reduced to the 2D images the
networks see, each remembering where it came from.

Tomosynthesis: maximum intensity over ``thickness`` consecutive frames, a slab per
``stride`` frames; the slab with the strongest finding gives the frame that is reported.

MRI (the approach of Hu et al. 2021): of a dynamic contrast-enhanced exam, the
pre-contrast series and the first post-contrast phase, chosen by configurable rules on
series description and acquisition time; the subtraction post - pre, projected by maximum
intensity along the slice axis. Volumes are read with SimpleITK, slices ordered along the
slice normal. Each projection pixel remembers the slice of its maximum, so a finding on the
projection names the slice where its enhancement peaks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from pydicom import dcmread
from pydicom.dataset import Dataset


@dataclass(frozen=True)
class Slab:
    first_frame: int  # 1-based, inclusive
    last_frame: int  # 1-based, inclusive
    image: np.ndarray

    @property
    def center_frame(self) -> int:
        return (self.first_frame + self.last_frame) // 2


def slabs(frames: np.ndarray, thickness: int, stride: int | None = None) -> list[Slab]:
    """Maximum intensity slabs over a (frames, rows, columns) stack."""
    if frames.ndim != 3:
        raise ValueError("slabs are made from a (frames, rows, columns) stack")
    if thickness < 1:
        raise ValueError("a slab is at least one frame thick")
    step = stride or thickness
    count = frames.shape[0]
    starts = list(range(0, max(count - thickness, 0) + 1, step))
    if starts[-1] + thickness < count:  # the last frames get a slab of their own
        starts.append(count - thickness if count >= thickness else 0)
    return [
        Slab(
            start + 1, min(start + thickness, count), frames[start : start + thickness].max(axis=0)
        )
        for start in starts
    ]


@dataclass(frozen=True)
class MrSeries:
    series_instance_uid: str
    description: str
    acquisition_time_s: float | None  # seconds since midnight of the earliest slice
    paths: tuple[Path, ...] = field(compare=False)


@dataclass(frozen=True)
class DceRules:
    """Regular expressions (case-insensitive) on Series Description."""

    pre: tuple[str, ...] = (r"\bpre\b", r"pre[-_ ]?contrast", r"\bnative\b", r"dyn.*\b(1|0)\b")
    post: tuple[str, ...] = (
        r"\bpost\b",
        r"post[-_ ]?contrast",
        r"\bph(ase)?[-_ ]?[1-9]",
        r"dyn.*\b[2-9]\b",
        r"\+c\b",
    )
    fallback: tuple[str, ...] = (r"t1", r"dyn")


def _matches(patterns: Sequence[str], text: str) -> bool:
    return any(re.search(p, text, re.IGNORECASE) for p in patterns)


def choose_dce_pair(
    series: Sequence[MrSeries],
    rules: DceRules = DceRules(),
) -> tuple[MrSeries, MrSeries] | None:
    """(pre, first post) by the rules, the post being the earliest one after the pre."""
    pre = [
        s
        for s in series
        if _matches(rules.pre, s.description) and not _matches(rules.post, s.description)
    ]
    post = [s for s in series if _matches(rules.post, s.description)]
    if not pre or not post:
        return None
    chosen_pre = min(pre, key=lambda s: s.acquisition_time_s or 0.0)
    later = [
        s
        for s in post
        if s.acquisition_time_s is None
        or chosen_pre.acquisition_time_s is None
        or s.acquisition_time_s > chosen_pre.acquisition_time_s
    ]
    if not later:
        return None
    return chosen_pre, min(later, key=lambda s: s.acquisition_time_s or 0.0)


def fallback_series(
    series: Sequence[MrSeries],
    rules: DceRules = DceRules(),
) -> MrSeries | None:
    for pattern in rules.fallback:
        found = [s for s in series if _matches([pattern], s.description)]
        if found:
            return max(found, key=lambda s: len(s.paths))
    return max(series, key=lambda s: len(s.paths)) if series else None


def slice_position(ds: Dataset) -> float:
    """Where a slice lies along its normal (mm): the order of a volume's slices."""
    cosines = np.array(ds.ImageOrientationPatient, dtype=np.float64)
    normal = np.cross(cosines[:3], cosines[3:])
    return float(np.dot(normal, np.array(ds.ImagePositionPatient, dtype=np.float64)))


def read_volume(paths: Sequence[Path]) -> np.ndarray:
    """(slices, rows, columns) float32, slices ordered along the slice normal."""
    ordered = sorted(paths, key=lambda path: slice_position(dcmread(path, stop_before_pixels=True)))
    image = sitk.ReadImage([str(p) for p in ordered])
    return sitk.GetArrayFromImage(image).astype(np.float32)


def dce_projection(pre: np.ndarray, post: np.ndarray) -> np.ndarray:
    """Maximum intensity projection of the positive enhancement (post - pre)."""
    if pre.shape != post.shape:
        raise ValueError("pre- and post-contrast volumes differ in shape")
    enhancement = np.clip(post - pre, 0, None)
    return np.asarray(enhancement.max(axis=0), dtype=np.float32)


def dce_peak_slices(pre: np.ndarray, post: np.ndarray) -> np.ndarray:
    """For each pixel of ``dce_projection``, the slice (index along the volume) of its
    maximum: the slice of greatest enhancement, where a finding on the projection is."""
    if pre.shape != post.shape:
        raise ValueError("pre- and post-contrast volumes differ in shape")
    return np.asarray(np.argmax(post - pre, axis=0), dtype=np.int32)


def plain_projection(volume: np.ndarray) -> np.ndarray:
    return np.asarray(volume.max(axis=0), dtype=np.float32)


def plain_peak_slices(volume: np.ndarray) -> np.ndarray:
    """For each pixel of ``plain_projection``, the slice of its maximum."""
    return np.asarray(np.argmax(volume, axis=0), dtype=np.int32)
