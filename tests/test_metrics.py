"""Tests of faceapp.evaluation.metrics and faceapp.evaluation.lfw_pairs.

Expected values are worked out by hand in the comments. Scores are small integers
(as floats) so that thresholds and midpoints are exact in binary floating point.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from faceapp.evaluation.lfw_pairs import Pair, image_name, pair_arrays, read_pairs
from faceapp.evaluation.metrics import (
    PRF,
    KFoldResult,
    RocCurve,
    best_threshold,
    equal_error_rate,
    kfold_accuracy,
    known_unknown_prf,
    open_set_dir_at_far,
    plot_roc,
    rank1_accuracy,
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


# ------------------------------------------------------------------- identification


def test_rank1_max_over_templates() -> None:
    gallery = np.array(["bob", "alice", "carol", "alice"])
    similarity = np.array(
        [
            # bob, alice, carol, alice
            [
                0.80,
                0.20,
                0.10,
                0.90,
            ],  # alice: max(.2, .9) = .9 > bob .8 (mean .55 would lose)
            [0.60, 0.70, 0.65, 0.10],  # bob: alice .7 wins -> wrong
            [0.10, 0.30, 0.50, 0.20],  # carol: right
            [0.40, 0.10, 0.30, 0.20],  # bob: right
        ]
    )
    probes = np.array(["alice", "bob", "carol", "bob"])
    assert rank1_accuracy(similarity, probes, gallery) == pytest.approx(0.75)
    # Column order does not matter.
    perm = np.array([2, 0, 3, 1])
    assert rank1_accuracy(similarity[:, perm], probes, gallery[perm]) == pytest.approx(
        0.75
    )


def test_rank1_rejects_unenrolled_probe_and_bad_shapes() -> None:
    similarity = np.array([[0.9, 0.1], [0.2, 0.8]])
    with pytest.raises(ValueError, match="absent from the gallery"):
        rank1_accuracy(similarity, [1, 3], [1, 2])
    with pytest.raises(ValueError, match="probe_labels"):
        rank1_accuracy(similarity, [1], [1, 2])
    with pytest.raises(ValueError, match="gallery_labels"):
        rank1_accuracy(similarity, [1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="matrix"):
        rank1_accuracy([0.1, 0.2], [1, 2], [1, 2])
    with pytest.raises(ValueError, match="non-finite"):
        rank1_accuracy([[np.nan, 0.1], [0.2, 0.8]], [1, 2], [1, 2])


# Gallery identities 0, 0, 1, 2. Known probes' best scores 9 (right), 8 (wrong
# identity), 6 (right), 4 (right); unknown probes' best scores 7, 5, 3, 2.
OS_GALLERY = np.array([0, 0, 1, 2])
OS_SIMILARITY = np.array(
    [
        [9, 1, 2, 3],  # label 0 -> identity 0, right
        [1, 2, 3, 8],  # label 1 -> identity 2, wrong
        [1, 2, 3, 6],  # label 2 -> identity 2, right
        [1, 2, 4, 3],  # label 1 -> identity 1, right
        [7, 1, 1, 1],  # unknown
        [1, 5, 1, 1],  # unknown
        [1, 1, 3, 1],  # unknown
        [1, 1, 1, 2],  # unknown
    ],
    dtype=float,
)
OS_PROBES = np.array([0, 1, 2, 1, -1, -1, -1, -1])
OS_KNOWN = np.array([True] * 4 + [False] * 4)


@pytest.mark.parametrize(
    ("far", "expected_dir", "expected_threshold"),
    [
        (0.0, 0.25, 8.0),  # no unknown >= 8; only 9 is right and detected
        (0.25, 0.5, 6.0),  # unknown 7 alarms (1/4); 9 and 6 are right and detected
        (0.3, 0.5, 6.0),
        (0.5, 0.75, 4.0),  # unknowns 7, 5 alarm; 9, 6, 4 right and detected
        (1.0, 0.75, 2.0),  # smallest observed score
    ],
)
def test_open_set_dir_at_far(
    far: float, expected_dir: float, expected_threshold: float
) -> None:
    dir_rate, threshold = open_set_dir_at_far(
        OS_SIMILARITY, OS_PROBES, OS_GALLERY, OS_KNOWN, far
    )
    assert dir_rate == pytest.approx(expected_dir)
    assert threshold == expected_threshold


def test_open_set_unreachable_far() -> None:
    similarity = OS_SIMILARITY.copy()
    similarity[4, 0] = 10.0  # an unknown probe now has the highest score of all
    dir_rate, threshold = open_set_dir_at_far(
        similarity, OS_PROBES, OS_GALLERY, OS_KNOWN, 0.0
    )
    assert (dir_rate, threshold) == (0.0, math.inf)


def test_open_set_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one known and one unknown"):
        open_set_dir_at_far(OS_SIMILARITY, OS_PROBES, OS_GALLERY, np.ones(8, bool), 0.1)
    with pytest.raises(ValueError, match="absent"):
        open_set_dir_at_far(
            OS_SIMILARITY, [0, 1, 2, 7, -1, -1, -1, -1], OS_GALLERY, OS_KNOWN, 0.1
        )
    with pytest.raises(ValueError, match="known_mask"):
        open_set_dir_at_far(OS_SIMILARITY, OS_PROBES, OS_GALLERY, OS_KNOWN[:3], 0.1)
    with pytest.raises(ValueError, match="far must be in"):
        open_set_dir_at_far(OS_SIMILARITY, OS_PROBES, OS_GALLERY, OS_KNOWN, 2.0)


# ----------------------------------------------------------------------------- PRF


def test_prf_basic() -> None:
    # Predicted known (>= .5): 1 1 0 1 0 vs truth 1 1 1 0 0: TP 2, FP 1, FN 1.
    prf = known_unknown_prf([0.9, 0.8, 0.3, 0.6, 0.2], [1, 1, 1, 0, 0], 0.5)
    assert isinstance(prf, PRF)
    assert prf.precision == pytest.approx(2 / 3)
    assert prf.recall == pytest.approx(2 / 3)
    assert prf.f1 == pytest.approx(2 / 3)


def test_prf_perfect() -> None:
    assert known_unknown_prf([0.9, 0.1], [True, False], 0.5) == PRF(1.0, 1.0, 1.0)


def test_prf_zero_division_is_zero_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Nothing predicted known: precision 0/0 -> 0; recall 0/2 = 0; F1 0.
        assert known_unknown_prf([0.9, 0.8, 0.1], [1, 1, 0], math.inf) == PRF(
            0.0, 0.0, 0.0
        )
        # No known probe: recall 0/0 -> 0; precision 0/1 = 0; F1 0.
        assert known_unknown_prf([0.9, 0.1], [0, 0], 0.5) == PRF(0.0, 0.0, 0.0)


def test_prf_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="NaN"):
        known_unknown_prf([0.9], [1], float("nan"))
    with pytest.raises(ValueError, match="differ in length"):
        known_unknown_prf([0.9, 0.2], [1], 0.5)
    with pytest.raises(ValueError, match="empty"):
        known_unknown_prf([], [], 0.5)


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


# ---------------------------------------------------------------------- pairs parser


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pairs.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_image_name() -> None:
    assert image_name("Aaron_Peirsol", 1) == "Aaron_Peirsol_0001.jpg"
    assert image_name("X", 123) == "X_0123.jpg"
    with pytest.raises(ValueError):
        image_name("X", 0)


def test_read_pairs_tiny(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "2\t1\nAlice\t1\t2\nAlice\t1\tBob\t3\n\nCarol 2 4\nDan 1 Eve 12\n",
    )
    pairs = read_pairs(path)
    assert pairs == [
        Pair("Alice_0001.jpg", "Alice_0002.jpg", True, 0),
        Pair("Alice_0001.jpg", "Bob_0003.jpg", False, 0),
        Pair("Carol_0002.jpg", "Carol_0004.jpg", True, 1),
        Pair("Dan_0001.jpg", "Eve_0012.jpg", False, 1),
    ]
    labels, folds = pair_arrays(pairs)
    np.testing.assert_array_equal(labels, [True, False, True, False])
    np.testing.assert_array_equal(folds, [0, 0, 1, 1])
    assert folds.dtype == np.int64


def test_read_pairs_two_per_class(tmp_path: Path) -> None:
    path = _write(tmp_path, "1 2\nA 1 2\nB 3 1\nA 1 B 1\nC 2 D 5\n")
    pairs = read_pairs(path)
    assert [p.same for p in pairs] == [True, True, False, False]
    assert {p.fold for p in pairs} == {0}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("1\nA 1 2\nA 1 B 2\n", r"line 1: header must be"),
        ("1 x\nA 1 2\nA 1 B 2\n", r"line 1: header fields must be integers"),
        ("0 1\n", r"line 1: header numbers must be positive"),
        ("1 1\nA 1 B 2\nA 1 B 2\n", r"line 2: expected 3 fields"),
        ("1 1\nA 1 2\nA 1 2\n", r"line 3: expected 4 fields"),
        ("1 1\nA 1 two\nA 1 B 2\n", r"line 2: image index 'two' is not an integer"),
        ("1 1\nA 1 2\nA 1 B 2.5\n", r"line 3: image index '2.5' is not an integer"),
        ("1 1\nA 0 2\nA 1 B 2\n", r"line 2: image index 0 must be >= 1"),
        ("1 1\nA 2 2\nA 1 B 2\n", r"line 2: .*image 2 of A twice"),
        ("1 1\nA 1 2\nA 1 A 2\n", r"line 3: .*names A twice"),
        (
            "2 1\nA 1 2\nA 1 B 2\n",
            r"promises 2 folds x 2 pairs = 4 pair lines, but the file has 2",
        ),
        (
            "1 1\nA 1 2\nA 1 B 2\nC 1 2\n",
            r"promises 1 folds x 2 pairs = 2 pair lines, but the file has 3",
        ),
    ],
)
def test_read_pairs_malformed(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_pairs(_write(tmp_path, text))


def test_read_pairs_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_pairs(tmp_path / "nope.txt")


# ------------------------------------------------------------------ real LFW pairs


def _lfw_dir() -> Path:
    override = os.environ.get("FACEAPP_LFW_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1].parent / "shared/data/lfw"


def test_real_lfw_pairs() -> None:
    lfw = _lfw_dir()
    pairs_file = lfw / "pairs.txt"
    if not pairs_file.is_file():
        reason = (
            f"LFW pairs.txt not found at {pairs_file}; set FACEAPP_LFW_DIR to the LFW "
            "folder holding pairs.txt and images/"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    pairs = read_pairs(pairs_file)
    assert len(pairs) == 6000
    assert sum(p.same for p in pairs) == 3000
    labels, folds = pair_arrays(pairs)
    np.testing.assert_array_equal(np.bincount(folds), [600] * 10)
    np.testing.assert_array_equal(np.bincount(folds, weights=labels), [300] * 10)
    assert pairs[0] == Pair("Abel_Pacheco_0001.jpg", "Abel_Pacheco_0004.jpg", True, 0)
    images = lfw / "images"
    if images.is_dir():
        present = set(os.listdir(images))
        missing = {name for p in pairs for name in (p.left, p.right)} - present
        assert not missing, (
            f"{len(missing)} images named in pairs.txt are missing, "
            f"e.g. {sorted(missing)[:3]}"
        )
