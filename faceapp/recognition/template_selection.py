"""Which of a person's candidate views to keep as gallery templates: the ones that add most.

Enrollment sees more candidate views than it keeps (the webcam dialog gathers several
per pose). Keeping the best-quality ones tends to keep near-copies of one view; keeping
the most different ones keeps outliers (a blink, a blurred frame). :func:`select_templates`
instead treats the candidates as a sample of how the person will look to the camera, and
keeps the templates that *cover* them best: greedily, the candidate whose addition most
raises the summed similarity of every candidate to its nearest kept template (the
facility-location objective; each greedy step is within a factor 1 - 1/e of the best
set of that size). Optional groups (e.g. frontal, left, right) are each given a template
while the count allows. ``tools/measure_enroll_selection.py`` measures the choice on LFW.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["select_templates"]


def select_templates(embeddings: np.ndarray, count: int, *, weights: np.ndarray | None = None,
                     groups: Sequence[object] | None = None, keep: Sequence[int] = ()) -> list[int]:
    """Indices (in the order chosen) of the ``count`` candidates to keep.

    Args:
        embeddings: float32 ``(N, D)`` unit rows, the candidates.
        count: how many to keep; all ``N`` (in order) when ``count >= N``.
        weights: ``(N,)`` non-negative, how much each candidate counts as a view to cover
            (e.g. its quality); equal when None.
        groups: ``(N,)`` labels; every distinct label gets at least one template while
            ``count`` is at least the number of labels.
        keep: candidates already kept (e.g. the templates a retake leaves): they come
            first in the result and count towards ``count``.
    """
    vectors = np.asarray(embeddings, np.float32)
    total = len(vectors)
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    kept = list(dict.fromkeys(int(i) for i in keep))
    if any(not 0 <= i < total for i in kept):
        raise ValueError(f"keep must be indices below {total}")
    if len(kept) > count:
        raise ValueError(f"{len(kept)} candidates to keep exceed count {count}")
    if count >= total:
        return kept + [i for i in range(total) if i not in kept]
    weight = np.ones(total) if weights is None else np.clip(np.asarray(weights, np.float64), 0.0, None)
    if weight.shape != (total,):
        raise ValueError(f"weights must have shape ({total},), got {weight.shape}")
    labels = np.zeros(total, np.int64) if groups is None else np.unique(np.asarray(groups, object).astype(str), return_inverse=True)[1]
    if labels.shape != (total,):
        raise ValueError(f"groups must have {total} labels, got {len(labels)}")
    similarity = (vectors @ vectors.T).astype(np.float64)
    covered = np.full(total, -1.0)  # each candidate's similarity to its nearest kept template (cosine >= -1)
    for index in kept:
        covered = np.maximum(covered, similarity[:, index])
    chosen: list[int] = list(kept)
    while len(chosen) < count:
        missing = set(np.unique(labels)) - {labels[i] for i in chosen}
        allowed = np.ones(total, bool)
        allowed[chosen] = False
        if groups is not None and count - len(chosen) <= len(missing):
            allowed &= np.isin(labels, list(missing))
        gains = (weight[:, None] * np.maximum(similarity - covered[:, None], 0.0)).sum(axis=0)
        gains[~allowed] = -np.inf
        best = int(np.argmax(gains))
        chosen.append(best)
        covered = np.maximum(covered, similarity[:, best])
    return chosen
