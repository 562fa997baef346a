"""Findings from a heatmap: its peaks above the operating threshold, as scored regions.

A peak is a local maximum of the (source-grid) heatmap; its region is the ellipse fitted to
the connected area above half the peak's value around it (second moments), so the outline
follows the shape of the evidence. Peaks closer than ``min_distance`` px to a stronger one
are the same finding.
"""

from __future__ import annotations

import math

import numpy as np

from models.serving.result import Finding, Point, Region

MAX_FINDINGS = 5


def local_maxima(heatmap: np.ndarray, threshold: float, min_distance: int) -> list[tuple[int, int]]:
    """(row, column) of peaks >= threshold, strongest first, at least min_distance apart.

    A peak is a local maximum (no higher neighbour in its 3 x 3 neighbourhood), so one broad
    blob gives one peak however wide it is."""
    padded = np.pad(heatmap, 1, mode="constant", constant_values=-np.inf)
    rows, columns = heatmap.shape
    neighbourhood = np.max(
        [
            padded[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + columns]
            for dr in (-1, 0, 1)
            for dc in (-1, 0, 1)
        ],
        axis=0,
    )
    candidates = np.argwhere((heatmap >= threshold) & (heatmap >= neighbourhood))
    order = np.argsort(-heatmap[candidates[:, 0], candidates[:, 1]], kind="stable")
    peaks: list[tuple[int, int]] = []
    for row, column in candidates[order]:
        if all(math.hypot(row - r, column - c) >= min_distance for r, c in peaks):
            peaks.append((int(row), int(column)))
        if len(peaks) == MAX_FINDINGS:
            break
    return peaks


def region_around(heatmap: np.ndarray, row: int, column: int, radius: int) -> Region:
    """The ellipse of the pixels above half the peak within ``radius`` of it."""
    peak = float(heatmap[row, column])
    top, left = max(row - radius, 0), max(column - radius, 0)
    window = heatmap[top : row + radius + 1, left : column + radius + 1]
    rows, columns = np.nonzero(window >= peak / 2)
    if rows.size < 3:
        return Region.ellipse(Point(float(column), float(row)), 2.0, 2.0)
    rows = rows + top
    columns = columns + left
    weights = heatmap[rows, columns].astype(np.float64)
    cr, cc = np.average(rows, weights=weights), np.average(columns, weights=weights)
    covariance = np.cov(np.vstack([columns - cc, rows - cr]), aweights=weights)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    minor, major = (max(2.0, 2.0 * math.sqrt(max(v, 0.0))) for v in eigenvalues)
    angle = math.degrees(math.atan2(eigenvectors[1, 1], eigenvectors[0, 1]))
    return Region.ellipse(Point(float(cc), float(cr)), major, min(minor, major), angle)


def findings_from_heatmap(
    heatmap: np.ndarray,
    score: float,
    threshold: float,
    kind: str = "suspicious region",
    min_distance: int = 20,
    frame: int | None = None,
) -> tuple[Finding, ...]:
    """Scored findings at the heatmap's peaks; a peak's score is the image score weighted by
    the peak's height, and only peaks whose score reaches ``threshold`` are reported."""
    found = []
    for row, column in local_maxima(heatmap, threshold=0.5, min_distance=min_distance):
        peak_score = float(np.clip(score * heatmap[row, column], 0.0, 1.0))
        if peak_score < threshold:
            continue
        region = region_around(heatmap, row, column, radius=2 * min_distance)
        found.append(Finding(kind, round(peak_score, 4), region, frame))
    return tuple(found)
