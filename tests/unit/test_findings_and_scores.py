"""Findings from heatmap peaks, and breast/study scores from view scores."""

from __future__ import annotations

import numpy as np
import pytest

from models.serving.aggregate import breasts, category, study_score
from models.serving.findings import findings_from_heatmap, local_maxima
from models.serving.result import Category, Shape


def blob(
    shape: tuple[int, int], row: float, column: float, sigma_r: float, sigma_c: float
) -> np.ndarray:
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    return np.exp(-(((y - row) / sigma_r) ** 2 + ((x - column) / sigma_c) ** 2) / 2)


def test_two_blobs_give_two_findings_at_their_centres() -> None:
    heat = np.maximum(blob((300, 200), 80, 60, 10, 10), 0.7 * blob((300, 200), 210, 140, 6, 18))
    findings = findings_from_heatmap(heat.astype(np.float32), score=0.9, threshold=0.5)
    assert len(findings) == 2
    first, second = findings
    assert first.score == pytest.approx(0.9, abs=1e-3)
    assert second.score == pytest.approx(0.63, abs=1e-2)
    assert first.region.shape is Shape.ELLIPSE
    assert first.region.center.column == pytest.approx(60, abs=1)
    assert first.region.center.row == pytest.approx(80, abs=1)
    assert second.region.center.column == pytest.approx(140, abs=1)
    assert second.region.center.row == pytest.approx(210, abs=1)
    # the second blob is wider than tall: its major axis runs along the columns
    a0, a1 = second.region.points[0], second.region.points[1]
    assert abs(a1.column - a0.column) > abs(a1.row - a0.row)


def test_weak_or_close_peaks_are_not_separate_findings() -> None:
    heat = blob((100, 100), 50, 50, 8, 8) + 0.95 * blob((100, 100), 50, 58, 8, 8)
    heat /= heat.max()
    assert len(local_maxima(heat, threshold=0.5, min_distance=20)) == 1
    assert findings_from_heatmap(heat.astype(np.float32), score=0.3, threshold=0.5) == ()


def test_breast_and_study_scores() -> None:
    result = breasts({"L": [0.9, 0.7], "R": [0.1, 0.2]}, threshold=0.5)
    assert [(b.laterality, b.score, b.category) for b in result] == [
        ("L", 0.8, Category.SUSPICIOUS),
        ("R", 0.15, Category.NORMAL),
    ]
    assert study_score(result) == 0.8
    assert category(0.3, 0.5) is Category.BENIGN
    with pytest.raises(ValueError):
        breasts({"L": []}, 0.5)


def test_one_broad_blob_is_one_finding_however_wide() -> None:
    rows, columns = np.mgrid[0:400, 0:300]
    heat = np.exp(-((rows - 200.0) ** 2 + (columns - 150.0) ** 2) / (2 * 60.0**2))
    peaks = local_maxima(heat.astype(np.float32), threshold=0.5, min_distance=10)
    assert peaks == [(200, 150)]
