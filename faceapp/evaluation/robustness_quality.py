"""Does a face-quality score pick out the views that will be judged wrongly?

``faceapp eval robustness`` pools every pair it scored (clean and every condition x
severity, the app's pipeline) and asks of each candidate quality score the standard
question of face image quality assessment (the "error versus discard" curve of
ISO/IEC 29794-1): discarding the pairs whose poorer view scores lowest, by how much do
the errors fall among the pairs still judged? A score that knows nothing makes no
difference (discarding at random leaves the error rates where they were); a good one
makes the errors fall fast.

Errors are counted at the clean run's decisions, as an app tuned on clean photos
would make them: the false non-match rate (FNMR: same-person pairs below the clean
threshold of FAR 1e-3), the false match rate at it, and the error rate of each pair's
fold threshold. A pair's quality is the lower of its two views' (a view not detected
scores 0). The scores compared:

* ``detector``: the detector's confidence (what the live loop weighs votes by,
  :func:`faceapp.vision.quality.view_quality`);
* ``enrollment``: the enrollment score (:func:`faceapp.vision.quality.quality_scores`:
  size x blur x pose x detector confidence);
* ``size_blur_pose_exposure``: the same with an exposure factor and the sharpness
  measured after a 3x3 Gaussian (sensor noise makes a dark image look sharp to the
  Laplacian);
* ``detector_x_size``: what the live loop weighed votes by before: the detector's
  confidence times the face's size (saturating at 120 px).

``gates``: the pairs a minimum detector confidence would leave unjudged, and the error
rates of the rest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from faceapp.evaluation.robustness_embed import MEASURES

__all__ = ["DISCARD_FRACTIONS", "GATES", "PooledPairs", "candidate_scores", "format_quality_table", "quality_section"]

DISCARD_FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.3)
#: Minimum detector confidences tried as gates (the app's is JUDGE_MIN_CONFIDENCE).
GATES = (0.82, 0.85, 0.88, 0.9)


@dataclass(frozen=True)
class PooledPairs:
    """Pairs of several runs, concatenated: similarity ``scores`` and ``labels`` (same
    person) ``(n,)``, each pair's clean fold threshold ``thresholds`` ``(n,)``, the
    clean threshold of FAR 1e-3 ``far_threshold``, and the two views' measurements
    ``left`` / ``right`` float ``(n, len(MEASURES))`` (NaN: not detected)."""

    scores: np.ndarray
    labels: np.ndarray
    thresholds: np.ndarray
    far_threshold: float
    left: np.ndarray
    right: np.ndarray


def _column(measures: np.ndarray, name: str) -> np.ndarray:
    return measures[:, MEASURES.index(name)].astype(np.float64)


def candidate_scores(measures: np.ndarray) -> dict[str, np.ndarray]:
    """Each compared score of views with ``measures`` ``(n, len(MEASURES))``; 0 where not detected."""
    from faceapp.vision.quality import QualityConfig, exposure_factor, quality_scores

    size, brightness, yaw, detector = (_column(measures, c) for c in ("face_size", "brightness", "yaw", "detector_score"))
    # The smoothed sharpness is about 2.7 times lower than the plain one on clean LFW faces.
    smoothed = dataclasses.replace(QualityConfig(), min_sharpness=QualityConfig().min_sharpness / 2.7)
    scores = {
        "detector": detector,
        "enrollment": quality_scores(size, _column(measures, "sharpness"), yaw, detector),
        "size_blur_pose_exposure": (quality_scores(size, _column(measures, "sharpness_smoothed"), yaw, detector, smoothed)
                                    * exposure_factor(brightness)),
        "detector_x_size": detector * np.minimum(1.0, size / 120.0),
    }
    return {name: np.nan_to_num(values, nan=0.0) for name, values in scores.items()}


def _errors(pairs: PooledPairs, kept: np.ndarray) -> dict[str, Any]:
    same, different = kept & pairs.labels, kept & ~pairs.labels
    wrong = (pairs.scores >= pairs.thresholds) != pairs.labels
    return {
        "kept": float(kept.mean()),
        "fnmr": float(np.mean(pairs.scores[same] < pairs.far_threshold)) if same.any() else None,
        "fmr": float(np.mean(pairs.scores[different] >= pairs.far_threshold)) if different.any() else None,
        "error_rate": float(np.mean(wrong[kept])) if kept.any() else None,
    }


def quality_section(pairs: PooledPairs, seed: int = 0) -> dict[str, Any]:
    """The report's ``quality`` entry (JSON-ready): per compared score, the error rates
    after discarding each of :data:`DISCARD_FRACTIONS` of the pairs (lowest quality
    first, ties broken at random with ``seed``), and the detector confidence's :data:`GATES`."""
    left, right = candidate_scores(pairs.left), candidate_scores(pairs.right)
    count = len(pairs.scores)
    tie_break = np.random.default_rng(seed).random(count)
    curves: dict[str, list[dict[str, Any]]] = {}
    for name in left:
        quality = np.minimum(left[name], right[name])
        order = np.lexsort((tie_break, quality))  # lowest quality first
        curve = []
        for fraction in DISCARD_FRACTIONS:
            kept = np.ones(count, bool)
            kept[order[: round(fraction * count)]] = False
            curve.append({"discarded": fraction, **_errors(pairs, kept)})
        curves[name] = curve
    confidence = np.minimum(left["detector"], right["detector"])
    gates = [{"gate": gate, **_errors(pairs, confidence >= gate)} for gate in GATES]
    return {
        "pairs": count,
        "description": "error versus discard over every pair scored (clean and degraded), at the clean decisions; "
                       "a pair's quality is its poorer view's",
        "discard": curves,
        "gates": gates,
    }


def format_quality_table(section: dict[str, Any]) -> str:
    """A markdown table of the section's discard curves (FNMR and error rate, %)."""
    names: Sequence[str] = list(section["discard"])

    def cell(point: dict[str, Any]) -> str:
        fnmr, error = point["fnmr"], point["error_rate"]
        return f"{100 * fnmr:.2f} / {100 * error:.2f}" if fnmr is not None and error is not None else "-"

    lines = ["| discarded | " + " | ".join(f"{n}: FNMR / error %" for n in names) + " |",
             "|---|" + "---|" * len(names)]
    for row, fraction in enumerate(DISCARD_FRACTIONS):
        lines.append(f"| {100 * fraction:g}% | " + " | ".join(cell(section["discard"][n][row]) for n in names) + " |")
    lines.append("")
    lines.append("| minimum detector confidence | pairs judged % | FNMR % | FMR % | error % |")
    lines.append("|---|---|---|---|---|")
    for gate in section["gates"]:
        def pct(value):
            return "-" if value is None else f"{100 * value:.2f}"
        lines.append(f"| {gate['gate']:g} | {pct(gate['kept'])} | {pct(gate['fnmr'])} | {pct(gate['fmr'])} | {pct(gate['error_rate'])} |")
    return "\n".join(lines)
