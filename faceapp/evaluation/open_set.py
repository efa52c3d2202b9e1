"""Open-set identification metrics: closed-set rank-1 accuracy, the detection-and-
identification rate (DIR) at a false alarm rate, and precision/recall/F1 of "known vs
unknown". Same conventions as :mod:`faceapp.evaluation.metrics` (scores are similarities;
arguments are validated, ValueError with a clear message)."""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import precision_recall_fscore_support

from faceapp.evaluation.metrics import PRF, as_bool, as_scores, check_rate

logger = logging.getLogger(__name__)

__all__ = ["known_unknown_prf", "open_set_dir_at_far", "rank1_accuracy"]


def _identification_inputs(
    similarity: ArrayLike, probe_labels: ArrayLike, gallery_labels: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate an identification problem.

    Returns ``(similarity (P, G) float64, probe_labels (P,), gallery_labels (G,))``.
    """
    try:
        sim = np.asarray(similarity, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"similarity must be numeric: {exc}") from None
    if sim.ndim != 2:
        raise ValueError(
            f"similarity must be a (probes, gallery) matrix, got shape {sim.shape}"
        )
    if sim.shape[0] == 0 or sim.shape[1] == 0:
        raise ValueError(f"similarity is empty (shape {sim.shape})")
    if not np.all(np.isfinite(sim)):
        raise ValueError("similarity contains non-finite values (NaN or inf)")
    probes = np.asarray(probe_labels)
    gallery = np.asarray(gallery_labels)
    if probes.shape != (sim.shape[0],):
        raise ValueError(
            f"probe_labels must have shape ({sim.shape[0]},) to match similarity "
            f"{sim.shape}, got {probes.shape}"
        )
    if gallery.shape != (sim.shape[1],):
        raise ValueError(
            f"gallery_labels must have shape ({sim.shape[1]},) to match similarity "
            f"{sim.shape}, got {gallery.shape}"
        )
    return sim, probes, gallery


def _best_identity(
    sim: np.ndarray, gallery_labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Score each probe against each identity (max over its templates).

    Args:
        sim: ``(P, G) float64`` similarities.
        gallery_labels: ``(G,)`` identity of each gallery template.

    Returns:
        ``(identities (I,) sorted distinct labels, best_identity (P,) label of the
        top-scoring identity per probe, best_score (P,) float64 its score)``. Ties
        between identities go to the first in sorted label order.
    """
    identities, inverse = np.unique(gallery_labels, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(inverse[order]) != 0])
    per_identity = np.maximum.reduceat(sim[:, order], starts, axis=1)  # (P, I)
    best = np.argmax(per_identity, axis=1)
    best_score = per_identity[np.arange(sim.shape[0]), best]
    return identities, identities[best], best_score


def rank1_accuracy(
    similarity: ArrayLike, probe_labels: ArrayLike, gallery_labels: ArrayLike
) -> float:
    """Closed-set rank-1 identification accuracy.

    The gallery may hold several templates per identity; a probe's score for an
    identity is the **maximum** over that identity's templates, and the probe is
    correct when the top-scoring identity is its own (equivalently: the gallery column
    with the highest similarity carries the probe's label). Ties between identities are
    resolved in favour of the first identity in sorted label order.

    Args:
        similarity: ``(P, G)`` finite similarities, probe ``p`` vs gallery
            template ``g``.
        probe_labels: ``(P,)`` identity labels (ints or strings) of the probes.
        gallery_labels: ``(G,)`` identity labels of the gallery templates.

    Returns:
        Fraction of probes identified correctly, in ``[0, 1]``.

    Raises:
        ValueError: on bad shapes/values, or if some probe's identity is absent from
            the gallery (that is an open-set problem; see :func:`open_set_dir_at_far`).
    """
    sim, probes, gallery = _identification_inputs(
        similarity, probe_labels, gallery_labels
    )
    missing = ~np.isin(probes, gallery)
    if np.any(missing):
        raise ValueError(
            f"{int(np.count_nonzero(missing))} probe(s) have identities absent from "
            f"the gallery (e.g. {probes[missing][0]!r}); closed-set rank-1 needs "
            "every probe identity enrolled"
        )
    _, predicted, _ = _best_identity(sim, gallery)
    return float(np.mean(predicted == probes))


def open_set_dir_at_far(
    similarity: ArrayLike,
    probe_labels: ArrayLike,
    gallery_labels: ArrayLike,
    known_mask: ArrayLike,
    far: float,
) -> tuple[float, float]:
    """Open-set detection-and-identification rate (DIR) at a false alarm rate.

    Each probe's *best score* is its maximum similarity over the gallery (the score of
    its top identity; identities scored as in :func:`rank1_accuracy`). A probe is
    "detected" when ``best_score >= threshold``.

    * The **false alarm rate** (FPIR) at a threshold is the fraction of unknown probes
      (``known_mask`` False) that are detected.
    * The threshold is the **smallest** candidate whose FPIR is ``<= far``; candidates
      are the observed best scores (known and unknown probes) and ``+inf``. With
      discrete scores FPIR can rarely equal ``far`` exactly, so this is the most
      permissive threshold that does not exceed it.
    * **DIR** is the fraction of known probes that are both rank-1 correct and detected.

    If only ``+inf`` meets the target (the top unknown score is the highest of all and
    ``far < 1 / n_unknown``) the result is ``(0.0, inf)``.

    Args:
        similarity: ``(P, G)`` finite similarities.
        probe_labels: ``(P,)`` identity labels; ignored for unknown probes.
        gallery_labels: ``(G,)`` identity labels of the gallery templates.
        known_mask: ``(P,)`` bool, ``True`` for probes whose identity is enrolled.
            At least one known and one unknown probe are required.
        far: target false alarm rate in ``[0, 1]``.

    Returns:
        ``(dir, threshold)``.
    """
    target = check_rate(far, "far")
    sim, probes, gallery = _identification_inputs(
        similarity, probe_labels, gallery_labels
    )
    known = as_bool(known_mask, "known_mask")
    if known.shape != probes.shape:
        raise ValueError(
            f"known_mask must have shape {probes.shape} to match the probes, "
            f"got {known.shape}"
        )
    n_unknown = int(np.count_nonzero(~known))
    if n_unknown == 0 or n_unknown == known.size:
        raise ValueError(
            "open-set evaluation needs at least one known and one unknown probe"
        )
    missing = known & ~np.isin(probes, gallery)
    if np.any(missing):
        raise ValueError(
            f"{int(np.count_nonzero(missing))} probe(s) marked known have identities "
            f"absent from the gallery (e.g. {probes[missing][0]!r})"
        )
    _, predicted, best_score = _best_identity(sim, gallery)
    unknown_sorted = np.sort(best_score[~known])
    candidates = np.append(np.unique(best_score), np.inf)  # ascending
    alarms = n_unknown - np.searchsorted(unknown_sorted, candidates, side="left")
    ok = alarms / n_unknown <= target  # non-decreasing in the candidate; last is True
    threshold = float(candidates[int(np.argmax(ok))])
    hits = known & (predicted == probes) & (best_score >= threshold)
    dir_rate = np.count_nonzero(hits) / np.count_nonzero(known)
    return float(dir_rate), threshold


def known_unknown_prf(
    best_scores: ArrayLike, is_known: ArrayLike, threshold: float
) -> PRF:
    """Precision, recall and F1 of predicting "known" as ``best_score >= threshold``.

    "Known" is the positive class. Zero-division convention: a metric whose
    denominator is zero is reported as 0.0 rather than raising or warning; precision is
    0.0 when nothing is predicted known, recall is 0.0 when no probe is known, and F1
    is 0.0 when precision + recall is 0.

    Args:
        best_scores: ``(n,)`` finite best gallery scores, one per probe.
        is_known: ``(n,)`` bool or 0/1, ``True`` when the probe's identity is enrolled.
        threshold: decision threshold; may be ``+inf`` or ``-inf`` but not NaN.

    Returns:
        A :class:`PRF`.
    """
    s = as_scores(best_scores, "best_scores")
    y = as_bool(is_known, "is_known")
    if s.shape != y.shape:
        raise ValueError(
            f"best_scores and is_known differ in length: {s.shape[0]} vs {y.shape[0]}"
        )
    t = float(threshold)
    if np.isnan(t):
        raise ValueError("threshold is NaN")
    predicted = (s >= t).astype(np.int64)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y.astype(np.int64),
        predicted,
        labels=[0, 1],
        pos_label=1,
        average="binary",
        zero_division=0.0,
    )
    return PRF(precision=float(precision), recall=float(recall), f1=float(f1))
