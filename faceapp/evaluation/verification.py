"""Verification figures of a set of pair scores: k-fold accuracy, ROC, EER, TAR at FAR,
the best threshold and the threshold presets they suggest."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from faceapp.evaluation.metrics import (
    KFoldResult,
    RocCurve,
    best_threshold,
    equal_error_rate,
    kfold_accuracy,
    roc,
    tar_at_far,
)

#: FAR targets reported with their TAR and threshold.
FAR_TARGETS = (1e-2, 1e-3)


@dataclass(frozen=True)
class VerificationResult:
    """Every verification figure of one set of pair scores.

    Attributes:
        kfold: the k-fold accuracy (thresholds chosen on the other folds).
        curve: the ROC over all pairs.
        eer, eer_threshold: equal error rate and its (interpolated) threshold.
        tar_at_far: ``{far: (tar, threshold)}`` for each of :data:`FAR_TARGETS`.
        best_threshold, best_accuracy: the single threshold with the best accuracy over
            all pairs, and that accuracy.
        app_threshold, app_accuracy, app_far, app_tar: the app's current threshold and
            its accuracy, false accept rate and true accept rate over all pairs.
    """

    kfold: KFoldResult
    curve: RocCurve
    eer: float
    eer_threshold: float
    tar_at_far: dict[float, tuple[float, float]]
    best_threshold: float
    best_accuracy: float
    app_threshold: float
    app_accuracy: float
    app_far: float
    app_tar: float

    def presets(self) -> dict[str, float]:
        """Threshold presets: strict = FAR 1e-3, balanced = best accuracy, lenient = FAR 1e-2."""
        return {
            "strict": self.tar_at_far[1e-3][1],
            "balanced": self.best_threshold,
            "lenient": self.tar_at_far[1e-2][1],
        }

    def to_json(self) -> dict[str, Any]:
        def number(value: float, digits: int = 6) -> float | None:
            return round(float(value), digits) if math.isfinite(value) else None

        return {
            "accuracy_mean": number(self.kfold.mean),
            "accuracy_std": number(self.kfold.std),
            "fold_accuracies": [number(a) for a in self.kfold.accuracies],
            "fold_thresholds": [number(t) for t in self.kfold.thresholds],
            "fold_threshold_mean": number(float(np.mean(self.kfold.thresholds))),
            "auc": number(self.curve.auc),
            "eer": number(self.eer),
            "eer_threshold": number(self.eer_threshold),
            "tar_at_far": {f"{far:g}": {"tar": number(tar), "threshold": number(threshold)} for far, (tar, threshold) in self.tar_at_far.items()},
            "best_threshold": number(self.best_threshold),
            "best_accuracy": number(self.best_accuracy),
            "app_threshold": number(self.app_threshold),
            "app_accuracy": number(self.app_accuracy),
            "app_far": number(self.app_far),
            "app_tar": number(self.app_tar),
            "presets": {name: number(value, 4) for name, value in self.presets().items()},
        }


def verification_result(scores: np.ndarray, labels: np.ndarray, folds: np.ndarray, app_threshold: float) -> VerificationResult:
    """All verification figures of ``scores`` ``(n,)`` (cosine similarities), ``labels``
    ``(n,)`` bool (True: same person) and ``folds`` ``(n,)`` int."""
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels, bool)
    threshold, accuracy = best_threshold(scores, labels)
    eer, eer_threshold = equal_error_rate(scores, labels)
    accepted = scores >= app_threshold
    return VerificationResult(
        kfold=kfold_accuracy(scores, labels, folds),
        curve=roc(scores, labels),
        eer=eer,
        eer_threshold=eer_threshold,
        tar_at_far={far: tar_at_far(scores, labels, far) for far in FAR_TARGETS},
        best_threshold=threshold,
        best_accuracy=accuracy,
        app_threshold=float(app_threshold),
        app_accuracy=float(np.mean(accepted == labels)),
        app_far=float(np.mean(accepted[~labels])) if (~labels).any() else math.nan,
        app_tar=float(np.mean(accepted[labels])) if labels.any() else math.nan,
    )


def pair_scores(embeddings: np.ndarray, left: np.ndarray, right: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Cosine similarity of each pair: float64 ``(n,)``; -1 where an image has no usable
    embedding ("reject" policy). ``embeddings`` ``(N, D)`` unit rows; ``left``/``right``
    ``(n,)`` row indices; ``usable`` ``(N,)`` bool."""
    scores = np.einsum("ij,ij->i", embeddings[left].astype(np.float64), embeddings[right].astype(np.float64))
    scores[~(usable[left] & usable[right])] = -1.0
    return np.clip(scores, -1.0, 1.0)


# --------------------------------------------------------------------------- the command
