"""Tests of faceapp.evaluation.open_set (identification metrics), on hand-worked toy problems."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from faceapp.evaluation.metrics import (
    PRF,
)
from faceapp.evaluation.open_set import known_unknown_prf, open_set_dir_at_far, rank1_accuracy

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


