"""Score calibration and operating points on synthetic scores: calibrated scores are closer
to the observed rates than raw ones and keep the ranking, each rule reaches its target on
the data it was chosen on, bad rule text is a clear error, and a manifest written before
calibration still loads and scores as it did."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from models.serving.calibration import (
    ISOTONIC_MIN,
    Calibration,
    OperatingRule,
    brier,
    choose_threshold,
    expected_calibration_error,
    fit_calibration,
    operating_point,
    parse_operating_point,
    rates,
)
from models.serving.checkpoint import CheckpointError, Manifest, file_sha256, read_verified


def overconfident(cases: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn with probability sigmoid(z), scores sigmoid(3 z) (a network that is too
    sure of itself), at a prevalence of about one in five."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-1.6, 1.2, cases)
    truth = (rng.random(cases) < 1 / (1 + np.exp(-z))).astype(int)
    return truth, 1 / (1 + np.exp(-3 * z))


@pytest.mark.parametrize("cases", [60, 2000])
def test_calibrated_scores_are_closer_to_the_rates_and_keep_the_ranking(cases: int) -> None:
    truth, scores = overconfident(cases, seed=1)
    calibration = fit_calibration(truth, scores)
    assert calibration.method == ("platt" if cases < ISOTONIC_MIN else calibration.method)
    assert calibration.cases == cases and calibration.reason
    held_out_truth, held_out = overconfident(5000, seed=2)  # judged on cases it never saw
    calibrated = calibration.apply(held_out)
    assert brier(held_out_truth, calibrated) < brier(held_out_truth, held_out)
    assert expected_calibration_error(held_out_truth, calibrated) < 0.6 * (
        expected_calibration_error(held_out_truth, held_out)
    )
    grid = np.linspace(0, 1, 1001)
    assert np.all(np.diff(calibration.apply(grid)) >= 0)  # monotone: a higher score stays
    assert calibration.apply(grid).min() >= 0 and calibration.apply(grid).max() <= 1


def test_isotonic_is_chosen_only_on_enough_cases_and_when_it_measures_better() -> None:
    rng = np.random.default_rng(3)
    # a step the logistic curve cannot follow: below 0.5 rarely positive, above nearly always
    scores = rng.random(3000)
    truth = (rng.random(3000) < np.where(scores < 0.5, 0.05, 0.95)).astype(int)
    chosen = fit_calibration(truth, scores)
    assert chosen.method == "isotonic", chosen.brier
    assert chosen.brier["isotonic (cross-validated)"] < chosen.brier["platt (cross-validated)"]
    few = fit_calibration(truth[:150], scores[:150])
    assert few.method == "platt" and "too few" in few.reason
    again = Calibration.from_dict(json.loads(json.dumps(chosen.__dict__)))
    assert np.array_equal(again.apply(scores), chosen.apply(scores))


def test_platt_keeps_strict_order_and_stays_finite_on_separable_cases() -> None:
    truth = np.array([0, 0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.35, 0.8, 0.9])
    calibration = fit_calibration(truth, scores)
    calibrated = calibration.apply(scores)
    assert calibration.method == "platt" and np.isfinite(calibration.slope)
    assert np.all(np.diff(calibrated) > 0)
    assert calibrated.min() > 0.0 and calibrated.max() < 1.0  # smoothed targets: no 0 or 1


@pytest.mark.parametrize(
    ("rule", "index"),
    [("sensitivity", 0), ("specificity", 1), ("recall-rate", 2)],
)
@pytest.mark.parametrize("target", [0.1, 0.5, 0.9])
def test_each_rule_reaches_its_target_within_one_case(rule: str, index: int, target: float) -> None:
    truth, scores = overconfident(400, seed=4)
    point = operating_point(OperatingRule(rule, target), truth, scores)
    achieved = rates(truth, scores, point.threshold)[index]
    assert (point.sensitivity, point.specificity, point.recall_rate)[index] == pytest.approx(
        achieved, abs=1e-6
    )
    counted = {0: truth.sum(), 1: (1 - truth).sum(), 2: truth.size}[index]  # the granularity
    if rule == "recall-rate":
        assert target - 1 / counted <= achieved <= target
    else:
        assert target <= achieved <= target + 1 / counted
    assert 0.0 <= point.threshold <= 1.0


def test_youden_is_the_default_and_picks_the_best_j() -> None:
    truth, scores = overconfident(300, seed=5)
    threshold = choose_threshold(OperatingRule(), truth, scores)
    best = max(sum(rates(truth, scores, t)[:2]) for t in np.unique(scores))
    assert sum(rates(truth, scores, threshold)[:2]) == pytest.approx(best)
    assert parse_operating_point("youden") == OperatingRule()


def test_operating_point_text() -> None:
    assert parse_operating_point("sensitivity=0.90") == OperatingRule("sensitivity", 0.9)
    assert parse_operating_point(" Specificity = 0.95") == OperatingRule("specificity", 0.95)
    assert parse_operating_point("recall-rate=0.10") == OperatingRule("recall-rate", 0.1)
    for text, message in [
        ("sens=0.9", "give one of youden, sensitivity=0.90"),
        ("sensitivity", "give one of"),
        ("sensitivity=high", "'high' is not a number"),
        ("specificity=90", "a fraction between 0 and 1"),
        ("recall-rate=0", "a fraction between 0 and 1"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_operating_point(text)


def _old_manifest(weights: Path) -> dict[str, object]:
    """A manifest as checkpoints were written before calibration existed."""
    return {
        "name": "old",
        "version": "0.1.0",
        "task": "normal_abnormal",
        "labels": ["normal", "abnormal"],
        "backbone": "resnet18",
        "input_size": [64, 48],
        "operating_threshold": 0.42,
        "sha256": file_sha256(weights),
        "validated_for_clinical_use": False,
        "training_data": "synthetic",
        "heatmap": "gradcam",
        "extra": {"threshold_rule": "Youden's J on the validation split"},
    }


def test_an_old_manifest_loads_and_writes_back_unchanged(tmp_path: Path) -> None:
    weights = tmp_path / "old.pt"
    weights.write_bytes(b"old weights")
    old = _old_manifest(weights)
    weights.with_suffix(".json").write_text(json.dumps(old))
    manifest = read_verified(weights)
    assert manifest.calibration is None and manifest.operating_point is None
    assert json.loads(manifest.to_json()) == old  # no new keys in what it writes


def test_a_manifest_with_calibration_round_trips_and_is_checked(tmp_path: Path) -> None:
    weights = tmp_path / "new.pt"
    weights.write_bytes(b"new weights")
    truth, scores = overconfident(100, seed=6)
    calibration = fit_calibration(truth, scores)
    point = operating_point(OperatingRule("sensitivity", 0.9), truth, calibration.apply(scores))
    data = _old_manifest(weights) | {"operating_threshold": point.threshold}
    manifest = Manifest.from_json(json.dumps(data))
    manifest = replace(manifest, calibration=calibration, operating_point=point)
    again = Manifest.from_json(manifest.to_json())
    assert again == manifest
    written = json.loads(manifest.to_json())
    assert written["operating_point"]["rule"] == "sensitivity"
    assert written["calibration"]["method"] == "platt"
    with pytest.raises(CheckpointError, match=r"operating_point\.threshold"):
        replace(manifest, operating_threshold=0.5 if point.threshold != 0.5 else 0.6)
    broken = written | {"calibration": {"method": "magic"}}
    with pytest.raises(CheckpointError, match="unreadable manifest"):
        Manifest.from_json(json.dumps(broken))


def test_a_validation_split_that_ranks_backwards_gives_one_score_and_says_so() -> None:
    truth = np.array([0, 0, 0, 1, 1, 1])
    backwards = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
    calibration = fit_calibration(truth, backwards)
    assert calibration.slope == 0.0
    assert np.unique(calibration.apply(np.array([0.05, 0.5, 0.95]))).size == 1
    assert "ranks nothing" in calibration.reason
    assert "ranks nothing" not in fit_calibration(truth, backwards[::-1]).reason
