"""Verification metrics for face recognition (identification: :mod:`faceapp.evaluation.open_set`).

Conventions used throughout this module:

* **Scores are similarities**: a higher score means "more likely the same person".
* **Labels** are boolean (or integer 0/1) arrays: ``True``/``1`` means a genuine
  (same-person) pair, ``False``/``0`` an impostor (different-person) pair.
* **Decision rule**: a pair is accepted (predicted "same") when ``score >= threshold``.
  A threshold of ``+inf`` therefore rejects everything and ``-inf`` accepts everything.
* FAR (false accept rate) = accepted impostors / impostors; TAR (true accept rate)
  = accepted genuines / genuines; FRR (false reject rate) = 1 - TAR.

Every function validates its arguments and raises :class:`ValueError` with a clear
message on empty inputs, mismatched lengths, non-finite scores, non-binary labels, or
(where a metric needs them) a missing class.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import roc_auc_score, roc_curve

logger = logging.getLogger(__name__)

__all__ = [
    "PRF",
    "KFoldResult",
    "RocCurve",
    "best_threshold",
    "equal_error_rate",
    "kfold_accuracy",
    "plot_roc",
    "roc",
    "tar_at_far",
]


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class RocCurve:
    """A receiver operating characteristic curve, one point per distinct threshold.

    Attributes:
        far: ``(K,) float64``, false accept rate at each threshold, non-decreasing,
            from 0.0 to 1.0.
        tar: ``(K,) float64``, true accept rate at each threshold, non-decreasing,
            from 0.0 to 1.0.
        thresholds: ``(K,) float64``, strictly decreasing; ``thresholds[0]`` is
            ``+inf`` (nothing accepted) and the others are the distinct observed scores.
            Point ``k`` is the operating point of the rule ``score >= thresholds[k]``.
        auc: area under the curve, in ``[0, 1]``.
    """

    far: np.ndarray
    tar: np.ndarray
    thresholds: np.ndarray
    auc: float


@dataclass(frozen=True)
class KFoldResult:
    """Result of the k-fold (LFW View 2) verification protocol.

    Attributes:
        accuracies: ``(F,) float64``, accuracy on each test fold, in the order of the
            sorted distinct fold indices.
        thresholds: ``(F,) float64``, the threshold used on each test fold (chosen by
            :func:`best_threshold` on the other folds), same order.
        mean: mean of ``accuracies``.
        std: population standard deviation (``ddof=0``) of ``accuracies``, the value
            usually reported with LFW results.
    """

    accuracies: np.ndarray
    thresholds: np.ndarray
    mean: float
    std: float


@dataclass(frozen=True)
class PRF:
    """Precision, recall and F1 score of a binary decision, each in ``[0, 1]``."""

    precision: float
    recall: float
    f1: float


# ------------------------------------------------------------------------ validation


def as_scores(values: ArrayLike, name: str = "scores") -> np.ndarray:
    """Return ``values`` as a non-empty, finite ``(n,) float64`` array or raise."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")
    return arr


def as_bool(values: ArrayLike, name: str) -> np.ndarray:
    """Return ``values`` (bool or numeric 0/1) as a ``(n,) bool`` array or raise."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype == np.bool_:
        return arr
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(
            f"{name} must be boolean or 0/1 numbers, got dtype {arr.dtype}"
        )
    if not np.all((arr == 0) | (arr == 1)):
        raise ValueError(f"{name} must contain only 0/1 (or False/True) values")
    return arr.astype(bool)


def binary_inputs(
    scores: ArrayLike, labels: ArrayLike, *, need_both: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (scores, labels) pair; optionally require both classes present."""
    s = as_scores(scores)
    y = as_bool(labels, "labels")
    if s.shape != y.shape:
        raise ValueError(
            f"scores and labels differ in length: {s.shape[0]} vs {y.shape[0]}"
        )
    if need_both:
        n_pos = int(np.count_nonzero(y))
        if n_pos == 0 or n_pos == y.size:
            missing = "genuine (label 1)" if n_pos == 0 else "impostor (label 0)"
            raise ValueError(
                f"labels contain no {missing} pairs; both classes are needed"
            )
    return s, y


def check_rate(value: float, name: str) -> float:
    """Return ``value`` as a float in ``[0, 1]`` or raise."""
    rate = float(value)
    if not 0.0 <= rate <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return rate


# ---------------------------------------------------------------------- verification


def roc(scores: ArrayLike, labels: ArrayLike) -> RocCurve:
    """Compute the full ROC curve (no intermediate points dropped) and its AUC.

    Args:
        scores: ``(n,)`` finite similarity scores.
        labels: ``(n,)`` bool or 0/1, ``True`` for genuine pairs. Both classes needed.

    Returns:
        A :class:`RocCurve`; see its attributes for shapes and ordering.
    """
    s, y = binary_inputs(scores, labels, need_both=True)
    far, tar, thresholds = roc_curve(y, s, drop_intermediate=False)
    thresholds = np.asarray(thresholds, dtype=np.float64).copy()
    thresholds[0] = np.inf  # older scikit-learn used max(score) + 1 here
    auc = float(roc_auc_score(y, s))
    return RocCurve(
        far=np.asarray(far, dtype=np.float64),
        tar=np.asarray(tar, dtype=np.float64),
        thresholds=thresholds,
        auc=auc,
    )


def equal_error_rate(scores: ArrayLike, labels: ArrayLike) -> tuple[float, float]:
    """Equal error rate: the operating point where FAR equals FRR (= 1 - TAR).

    The ROC is taken as the piecewise-linear curve through its points (one per
    distinct threshold). Along it ``FAR - FRR`` is non-decreasing, from -1 to +1, so it
    crosses zero exactly once (or touches zero on a run of points, of which the first,
    i.e. the highest threshold, is taken). On the crossing segment between points
    ``k-1`` and ``k`` the fraction ``t`` where ``FAR - FRR = 0`` is found by linear
    interpolation, and both the EER and the threshold are interpolated with the same
    ``t``. If point ``k-1`` is the ``+inf`` "reject all" point, the threshold of point
    ``k`` (the highest score) is returned, since no finite interpolation exists.

    Args:
        scores: ``(n,)`` finite similarity scores.
        labels: ``(n,)`` bool or 0/1, ``True`` for genuine pairs. Both classes needed.

    Returns:
        ``(eer, threshold)``: the EER in ``[0, 1]`` and the (interpolated) score
        threshold at which it occurs.
    """
    curve = roc(scores, labels)
    far, frr, thr = curve.far, 1.0 - curve.tar, curve.thresholds
    diff = far - frr
    k = int(np.argmax(diff >= 0.0))  # diff[-1] == 1, so a crossing always exists
    if diff[k] == 0.0 or k == 0:
        return float(far[k]), float(thr[k])
    t = -diff[k - 1] / (diff[k] - diff[k - 1])
    eer = far[k - 1] + t * (far[k] - far[k - 1])
    if np.isinf(thr[k - 1]):
        threshold = thr[k]
    else:
        threshold = thr[k - 1] + t * (thr[k] - thr[k - 1])
    return float(eer), float(threshold)


def tar_at_far(scores: ArrayLike, labels: ArrayLike, far: float) -> tuple[float, float]:
    """Return the true accept rate at a target false accept rate.

    Definition: among all thresholds ``t`` (the distinct observed scores and ``+inf``)
    whose empirical FAR, i.e. the fraction of impostor scores ``>= t``, is ``<= far``,
    take the highest TAR (fraction of genuine scores ``>= t``). Several thresholds can
    give that TAR; the **largest** of them is returned, so it is the most conservative
    cut (lowest FAR) that achieves it.

    If no finite threshold has FAR ``<= far`` (for instance ``far`` is below
    ``1 / n_impostors`` and the highest score belongs to an impostor), or the best TAR
    is 0, the result is ``(0.0, inf)``: only rejecting everything meets the target.
    FAR can only take values ``m / n_impostors``, so targets below ``1 / n_impostors``
    are effectively FAR = 0; a warning is logged in that case.

    Args:
        scores: ``(n,)`` finite similarity scores.
        labels: ``(n,)`` bool or 0/1, ``True`` for genuine pairs. Both classes needed.
        far: target FAR in ``[0, 1]``.

    Returns:
        ``(tar, threshold)``; accept a pair when ``score >= threshold``.
    """
    target = check_rate(far, "far")
    curve = roc(scores, labels)
    n_impostors = int(np.count_nonzero(~as_bool(labels, "labels")))
    if 0.0 < target < 1.0 / n_impostors:
        logger.warning(
            "target FAR %g is below the resolution 1/%d of the impostor set; "
            "it is evaluated as FAR = 0",
            target,
            n_impostors,
        )
    allowed = curve.far <= target  # a prefix of the curve: FAR is non-decreasing
    last = int(np.count_nonzero(allowed)) - 1  # >= 0 since far[0] == 0
    best_tar = curve.tar[last]
    k = int(np.argmax(curve.tar[: last + 1] == best_tar))  # first (largest threshold)
    return float(best_tar), float(curve.thresholds[k])


def best_threshold(scores: ArrayLike, labels: ArrayLike) -> tuple[float, float]:
    """Threshold maximising the accuracy of the rule ``score >= threshold``.

    Candidates are the midpoints between adjacent distinct sorted scores, plus
    ``-inf`` (accept all) and ``+inf`` (reject all); a midpoint sits in the gap between
    two observed scores, which is more robust on new data than a threshold equal to an
    observed score. (Should a midpoint round onto the lower score, the upper score is
    used instead, so the decision is unchanged.) Ties in accuracy are broken towards
    the **largest** threshold (fewest false accepts). Runs in ``O(n log n)``: one sort
    (``np.unique``) and cumulative sums of class counts.

    Args:
        scores: ``(n,)`` finite similarity scores.
        labels: ``(n,)`` bool or 0/1, ``True`` for genuine pairs. One class suffices.

    Returns:
        ``(threshold, accuracy)`` with accuracy in ``[0, 1]``.
    """
    s, y = binary_inputs(scores, labels, need_both=False)
    unique, inverse = np.unique(s, return_inverse=True)
    m = unique.size
    pos_per_value = np.bincount(inverse, weights=y, minlength=m)
    neg_per_value = np.bincount(inverse, weights=~y, minlength=m)
    # Candidate k (0..m) accepts exactly the scores >= unique[k] (nothing when k == m).
    pos_below = np.concatenate(([0.0], np.cumsum(pos_per_value)))
    neg_below = np.concatenate(([0.0], np.cumsum(neg_per_value)))
    correct = (
        pos_below[-1] - pos_below
    ) + neg_below  # accepted genuines + rejected impostors
    accuracy = correct / s.size
    k = m - int(np.argmax(accuracy[::-1]))  # last maximum = largest threshold
    if k == 0:
        threshold = -np.inf
    elif k == m:
        threshold = np.inf
    else:
        lo, hi = unique[k - 1], unique[k]
        mid = lo + (hi - lo) / 2.0
        threshold = mid if lo < mid <= hi else hi
    return float(threshold), float(accuracy[k])


def kfold_accuracy(
    scores: ArrayLike, labels: ArrayLike, folds: ArrayLike
) -> KFoldResult:
    """Verification accuracy under the k-fold protocol of LFW View 2.

    For each fold ``f`` (in increasing order of fold index), the threshold is chosen by
    :func:`best_threshold` on the pairs of all *other* folds, and the accuracy of
    ``score >= threshold`` is measured on the pairs of fold ``f``.

    Args:
        scores: ``(n,)`` finite similarity scores.
        labels: ``(n,)`` bool or 0/1, ``True`` for genuine pairs.
        folds: ``(n,)`` integer array, the fold index of each pair; at least two
            distinct values (any integers, e.g. 0..9).

    Returns:
        A :class:`KFoldResult`.
    """
    s, y = binary_inputs(scores, labels, need_both=False)
    f = np.asarray(folds)
    if f.ndim != 1:
        raise ValueError(f"folds must be one-dimensional, got shape {f.shape}")
    if f.dtype == np.bool_ or not np.issubdtype(f.dtype, np.integer):
        raise ValueError(f"folds must be an integer array, got dtype {f.dtype}")
    if f.shape != s.shape:
        raise ValueError(
            f"scores and folds differ in length: {s.shape[0]} vs {f.shape[0]}"
        )
    fold_ids = np.unique(f)
    if fold_ids.size < 2:
        raise ValueError(
            f"k-fold evaluation needs at least 2 folds, got {fold_ids.size}"
        )
    accuracies = np.empty(fold_ids.size, dtype=np.float64)
    thresholds = np.empty(fold_ids.size, dtype=np.float64)
    for i, fold in enumerate(fold_ids):
        test = f == fold
        threshold, train_acc = best_threshold(s[~test], y[~test])
        accuracies[i] = np.mean((s[test] >= threshold) == y[test])
        thresholds[i] = threshold
        logger.debug(
            "fold %d: threshold %.6g (train accuracy %.4f), test accuracy %.4f",
            fold,
            threshold,
            train_acc,
            accuracies[i],
        )
    return KFoldResult(
        accuracies=accuracies,
        thresholds=thresholds,
        mean=float(np.mean(accuracies)),
        std=float(np.std(accuracies)),
    )


# -------------------------------------------------------------------------- plotting


def plot_roc(
    curves: dict[str, RocCurve],
    path: str | PathLike[str],
    *,
    title: str = "ROC",
) -> Path:
    """Plot ROC curves (TAR against FAR, FAR on a log scale) and save them as a PNG.

    Points with FAR = 0 cannot appear on a log axis and are left out; the axis starts
    at the smallest positive FAR of all curves (at most 0.1). The legend shows each
    curve's AUC.
    Uses :class:`matplotlib.figure.Figure` directly, so no GUI backend is involved.

    Args:
        curves: non-empty mapping from legend label to :class:`RocCurve`.
        path: output file; parent folders are created. Saved as PNG whatever the suffix.
        title: figure title.

    Returns:
        The path written, as a :class:`~pathlib.Path`.
    """
    if not curves:
        raise ValueError("curves is empty; nothing to plot")
    from matplotlib.figure import Figure  # heavy import, only when plotting

    out = Path(path)
    fig = Figure(figsize=(6.0, 4.5), dpi=100)
    ax = fig.add_subplot()
    min_far = 1.0
    for name, curve in curves.items():
        keep = curve.far > 0
        if not np.any(keep):
            raise ValueError(f"curves[{name!r}] has no point with FAR > 0")
        min_far = min(min_far, float(curve.far[keep].min()))
        ax.plot(
            curve.far[keep], curve.tar[keep], label=f"{name} (AUC = {curve.auc:.4f})"
        )
    ax.set_xscale("log")
    ax.set_xlim(min(min_far, 0.1), 1.0)
    ax.set_ylim(0.0, 1.01)
    ax.set_xlabel("False accept rate (FAR)")
    ax.set_ylabel("True accept rate (TAR)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    logger.info("ROC plot written to %s", out)
    return out
