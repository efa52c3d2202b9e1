"""Tests of faceapp.evaluation.metrics (verification).

Expected values are worked out by hand in the comments. Scores are small integers
(as floats) so that thresholds and midpoints are exact in binary floating point.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from faceapp.evaluation.metrics import (
    KFoldResult,
    RocCurve,
    best_threshold,
    equal_error_rate,
    kfold_accuracy,
    plot_roc,
    roc,
    tar_at_far,
)

# Verification toy set: genuine scores 9, 8, 6, 4; impostor scores 7, 5, 3, 2.
# Full ROC, threshold -> (FAR, TAR):
#   inf (0, 0)   9 (0, .25)   8 (0, .5)   7 (.25, .5)   6 (.25, .75)
#   5 (.5, .75)  4 (.5, 1)    3 (.75, 1)  2 (1, 1)
TOY_SCORES = np.array([9, 8, 6, 4, 7, 5, 3, 2], dtype=float)
TOY_LABELS = np.array([1, 1, 1, 1, 0, 0, 0, 0])


# ----------------------------------------------------------------------------- ROC


def test_roc_points_and_auc() -> None:
    curve = roc(TOY_SCORES, TOY_LABELS)
    assert isinstance(curve, RocCurve)
    np.testing.assert_array_equal(curve.thresholds, [np.inf, 9, 8, 7, 6, 5, 4, 3, 2])
    np.testing.assert_allclose(curve.far, [0, 0, 0, 0.25, 0.25, 0.5, 0.5, 0.75, 1])
    np.testing.assert_allclose(curve.tar, [0, 0.25, 0.5, 0.5, 0.75, 0.75, 1, 1, 1])
    # Genuine > impostor comparisons: 9 -> 4, 8 -> 4, 6 -> 3, 4 -> 2; 13 of 16.
    assert curve.auc == pytest.approx(13 / 16)


def test_roc_accepts_bool_labels_and_lists() -> None:
    curve = roc(list(TOY_SCORES), [bool(v) for v in TOY_LABELS])
    assert curve.auc == pytest.approx(13 / 16)


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        ([], [], "empty"),
        ([0.1, 0.2], [1], "differ in length"),
        ([0.1, float("nan")], [1, 0], "non-finite"),
        ([0.1, float("inf")], [1, 0], "non-finite"),
        ([0.1, 0.2], [1, 1], "no impostor"),
        ([0.1, 0.2], [0, 0], "no genuine"),
        ([0.1, 0.2], [1, 2], "0/1"),
        ([0.1, 0.2], ["a", "b"], "boolean or 0/1"),
        ([[0.1, 0.2]], [[1, 0]], "one-dimensional"),
    ],
)
def test_roc_rejects_bad_input(scores: list, labels: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        roc(scores, labels)


# ----------------------------------------------------------------------------- EER


def test_eer_exact_crossing() -> None:
    # FAR - FRR = FAR + TAR - 1 is exactly 0 at threshold 6 (FAR .25, TAR .75).
    eer, threshold = equal_error_rate(TOY_SCORES, TOY_LABELS)
    assert eer == pytest.approx(0.25)
    assert threshold == 6.0


def test_eer_interpolated() -> None:
    # Genuine 9, 8, 4; impostor 7, 3. FAR + TAR - 1 is -1/3 at threshold 8
    # (FAR 0, TAR 2/3) and +1/6 at threshold 7 (FAR .5, TAR 2/3): t = (1/3)/(1/2) = 2/3,
    # EER = 0 + 2/3 * .5 = 1/3 (FRR there is 1 - 2/3 = 1/3 too), threshold 8 - 2/3.
    eer, threshold = equal_error_rate([9, 8, 4, 7, 3], [1, 1, 1, 0, 0])
    assert eer == pytest.approx(1 / 3)
    assert threshold == pytest.approx(8 - 2 / 3)


def test_eer_crossing_from_reject_all_point() -> None:
    # Genuine 9, 1; impostor 9. At inf: FAR 0, FRR 1; at 9: FAR 1, FRR .5.
    # FAR - FRR goes -1 -> .5, t = 2/3, EER = 2/3; no finite threshold to interpolate
    # from +inf, so the threshold is the top score 9.
    eer, threshold = equal_error_rate([9, 1, 9], [1, 1, 0])
    assert eer == pytest.approx(2 / 3)
    assert threshold == 9.0


def test_eer_perfect_separation() -> None:
    eer, threshold = equal_error_rate([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0])
    assert eer == 0.0
    assert threshold == 0.8


# ------------------------------------------------------------------------- TAR@FAR


@pytest.mark.parametrize(
    ("far", "expected_tar", "expected_threshold"),
    [
        (0.0, 0.5, 8.0),  # FAR 0 reaches TAR .5 first at 8 (7 would accept an impostor)
        (0.1, 0.5, 8.0),  # FAR can only be 0, .25, ...: same as 0
        (0.25, 0.75, 6.0),  # thresholds 7 and 6 have FAR .25; 6 gives TAR .75
        (0.3, 0.75, 6.0),
        (0.5, 1.0, 4.0),  # TAR 1 first reached at 4 (FAR .5)
        (1.0, 1.0, 4.0),  # 3 and 2 also give TAR 1; the largest threshold is kept
    ],
)
def test_tar_at_far(far: float, expected_tar: float, expected_threshold: float) -> None:
    tar, threshold = tar_at_far(TOY_SCORES, TOY_LABELS, far)
    assert tar == pytest.approx(expected_tar)
    assert threshold == expected_threshold
    # The operating point really satisfies the definition.
    genuine, impostor = TOY_SCORES[TOY_LABELS == 1], TOY_SCORES[TOY_LABELS == 0]
    assert np.mean(impostor >= threshold) <= far
    assert np.mean(genuine >= threshold) == pytest.approx(tar)


def test_tar_at_far_unreachable_returns_zero_and_inf() -> None:
    # Genuine 5; impostors 9, 1. Every finite threshold accepts impostor 9 (FAR .5).
    tar, threshold = tar_at_far([5, 9, 1], [1, 0, 0], 0.4)
    assert tar == 0.0
    assert threshold == math.inf


def test_tar_at_far_logs_resolution_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="faceapp.evaluation.metrics"):
        tar_at_far(TOY_SCORES, TOY_LABELS, 0.01)
    assert "resolution" in caplog.text


@pytest.mark.parametrize("far", [-0.1, 1.5, float("nan")])
def test_tar_at_far_rejects_bad_far(far: float) -> None:
    with pytest.raises(ValueError, match="far must be in"):
        tar_at_far(TOY_SCORES, TOY_LABELS, far)


def test_tar_at_far_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    scores = np.round(rng.normal(size=300), 1)  # many ties
    labels = rng.random(300) < 0.4
    scores[labels] += 0.8
    genuine, impostor = scores[labels], scores[~labels]
    for far in (0.0, 0.001, 0.01, 0.05, 0.1, 0.3, 1.0):
        candidates = np.append(np.unique(scores), np.inf)
        feasible = [t for t in candidates if np.mean(impostor >= t) <= far]
        best = max(np.mean(genuine >= t) for t in feasible)
        expected_threshold = max(t for t in feasible if np.mean(genuine >= t) == best)
        tar, threshold = tar_at_far(scores, labels, far)
        assert tar == pytest.approx(best)
        assert threshold == expected_threshold


# -------------------------------------------------------------------- best threshold


def test_best_threshold_separable() -> None:
    # Midpoint between the top impostor 0.3 and the lowest genuine 0.7.
    threshold, accuracy = best_threshold([0.2, 0.3, 0.7, 0.9], [0, 0, 1, 1])
    assert threshold == pytest.approx(0.5)
    assert accuracy == 1.0


def test_best_threshold_tie_goes_to_larger_threshold() -> None:
    # Sorted: 1n 3.5p 4n 8p. Candidates: -inf 2/4, 2.25 3/4, 3.75 2/4, 6 3/4, inf 2/4.
    threshold, accuracy = best_threshold([1, 4, 3.5, 8], [0, 0, 1, 1])
    assert threshold == 6.0
    assert accuracy == 0.75


def test_best_threshold_with_tied_scores() -> None:
    # 5 holds one genuine and two impostors, 9 one genuine: best is 7 (accept 9 only).
    threshold, accuracy = best_threshold([5, 5, 5, 9], [1, 0, 0, 1])
    assert threshold == 7.0
    assert accuracy == 0.75


def test_best_threshold_one_class() -> None:
    assert best_threshold([0.3, 0.6], [1, 1]) == (-math.inf, 1.0)
    assert best_threshold([0.3, 0.6], [0, 0]) == (math.inf, 1.0)


def test_best_threshold_matches_brute_force() -> None:
    rng = np.random.default_rng(1)
    scores = np.round(rng.normal(size=200), 1)
    labels = rng.random(200) < 0.5
    scores[labels] += 1.0
    threshold, accuracy = best_threshold(scores, labels)
    unique = np.unique(scores)
    candidates = np.concatenate(([-np.inf], (unique[:-1] + unique[1:]) / 2, [np.inf]))
    accuracies = np.array([np.mean((scores >= t) == labels) for t in candidates])
    assert accuracy == pytest.approx(accuracies.max())
    assert threshold == pytest.approx(
        candidates[np.flatnonzero(accuracies == accuracies.max())[-1]]
    )
    assert np.mean((scores >= threshold) == labels) == pytest.approx(accuracy)


# --------------------------------------------------------------------------- k-fold

# Fold 0: genuine 9, impostor 3. Fold 1: genuine 8, impostor 5. Fold 2: genuine 6,
# impostor 7.
#  * test fold 0, train 5n 6p 7n 8p: candidates 5.5 (3/4), 6.5 (2/4), 7.5 (3/4)
#    -> tie, larger threshold 7.5; 9 accepted, 3 rejected: accuracy 1.
#  * test fold 1, train 3n 6p 7n 9p: 4.5 (3/4), 6.5 (2/4), 8 (3/4) -> 8;
#    8 >= 8 accepted, 5 rejected: accuracy 1.
#  * test fold 2, train 3n 5n 8p 9p: 6.5 (4/4) -> 6.5; 6 rejected, 7 accepted: 0.
KF_SCORES = np.array([9, 3, 8, 5, 6, 7], dtype=float)
KF_LABELS = np.array([True, False, True, False, True, False])


def test_kfold_thresholds_by_hand() -> None:
    result = kfold_accuracy(KF_SCORES, KF_LABELS, np.array([0, 0, 1, 1, 2, 2]))
    assert isinstance(result, KFoldResult)
    np.testing.assert_array_equal(result.thresholds, [7.5, 8.0, 6.5])
    np.testing.assert_array_equal(result.accuracies, [1.0, 1.0, 0.0])
    assert result.mean == pytest.approx(2 / 3)
    assert result.std == pytest.approx(math.sqrt(2 / 9))  # population std


def test_kfold_orders_folds_by_index() -> None:
    # Same pairs, folds renamed 0 -> 10, 1 -> 3, 2 -> 7: reported in order 3, 7, 10.
    result = kfold_accuracy(KF_SCORES, KF_LABELS, [10, 10, 3, 3, 7, 7])
    np.testing.assert_array_equal(result.thresholds, [8.0, 6.5, 7.5])
    np.testing.assert_array_equal(result.accuracies, [1.0, 0.0, 1.0])


@pytest.mark.parametrize(
    ("folds", "message"),
    [
        ([0, 0, 0, 0, 0, 0], "at least 2 folds"),
        ([0.0, 0, 1, 1, 2, 2], "integer"),
        ([0, 1, 2], "differ in length"),
        ([True, False, True, False, True, False], "integer"),
    ],
)
def test_kfold_rejects_bad_folds(folds: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        kfold_accuracy(KF_SCORES, KF_LABELS, np.asarray(folds))


# ---------------------------------------------------------------------------- plot


def test_plot_roc_writes_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    labels = np.repeat([True, False], 500)
    scores = rng.normal(size=1000) + labels
    curves = {"toy": roc(TOY_SCORES, TOY_LABELS), "random": roc(scores, labels)}
    out = plot_roc(curves, tmp_path / "plots" / "roc.png")
    assert out == tmp_path / "plots" / "roc.png"
    data = out.read_bytes()
    assert len(data) > 1000
    assert data.startswith(b"\x89PNG\r\n\x1a\n")


def test_plot_roc_rejects_empty(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        plot_roc({}, tmp_path / "roc.png")


