"""The cost of the open-set decision per frame: matching with one fixed threshold (as
before the calibrated decision) against per-person thresholds, and with "not them"
templates, on the same synthetic gallery and queries, in alternating rounds (the
median of per-round ratios, as in :mod:`faceapp.evaluation.speed`).

Also the one-off cost of choosing the thresholds when the gallery changes
(:func:`faceapp.recognition.decision.calibrate_gallery`: the cohort term's product).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial

import numpy as np

from faceapp.evaluation.speed import alternate, paired_ratio
from faceapp.recognition.decision import DecisionRule, OpenSetCalibration, calibrate_gallery
from faceapp.recognition.matching import Matcher

#: The synthetic gallery of ``faceapp bench``'s matching rows: people, templates each, faces per frame.
MATCH_GALLERY = (1000, 5, 4)


@dataclass(frozen=True)
class MatchSpeed:
    name: str
    us_per_frame: float  # microseconds to decide one frame's faces (median of rounds)
    vs_reference: float | None  # reference time / this time (> 1: faster)


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def bench_matching(calibration: OpenSetCalibration | None, *, people: int = 1000, templates: int = 5, faces: int = 4,
                   dim: int = 128, rounds: int = 7, repeats: int = 200, seed: int = 0) -> tuple[list[MatchSpeed], float]:
    """Per-frame matching time of ``faces`` queries against ``people`` x ``templates``
    random unit templates: a fixed threshold (the reference), the calibrated per-person
    thresholds, and those plus one negative template per person. Returns the rows and
    the milliseconds one :func:`calibrate_gallery` takes for this gallery."""
    rng = np.random.default_rng(seed)
    embeddings = _unit(rng.normal(size=(people * templates, dim)))
    index = np.repeat(np.arange(people), templates)
    names = tuple(f"person {i}" for i in range(people))
    negatives = _unit(rng.normal(size=(people, dim)))
    queries = _unit(rng.normal(size=(faces, dim)))
    start = time.perf_counter()
    chosen = calibrate_gallery(calibration, embeddings, index, people, DecisionRule("balanced") if calibration else
                               DecisionRule(fixed=0.4))
    calibrate_ms = (time.perf_counter() - start) * 1e3
    matchers = {
        "one fixed threshold (before)": Matcher(embeddings, index, names, 0.4),
        "per-person thresholds": Matcher(embeddings, index, names, chosen.thresholds, gallery_threshold=chosen.gallery_threshold),
        "per-person + 1 'not them' each": Matcher(embeddings, index, names, chosen.thresholds,
                                                  gallery_threshold=chosen.gallery_threshold,
                                                  negatives=negatives, negative_index=np.arange(people)),
    }
    labels = list(matchers)

    def timed(matcher: Matcher) -> float:
        begin = time.perf_counter()
        for _ in range(repeats):
            matcher.match(queries)
        return (time.perf_counter() - begin) * 1e6 / repeats

    per_round = alternate({label: partial(timed, matcher) for label, matcher in matchers.items()}, rounds)
    reference = per_round[labels[0]]
    rows = [MatchSpeed(label, float(np.median(per_round[label])),
                       None if label == labels[0] else paired_ratio(reference, per_round[label])) for label in labels]
    return rows, calibrate_ms


def format_match_table(rows: list[MatchSpeed], calibrate_ms: float, people: int, templates: int, faces: int) -> str:
    title = f"matching ({people} people x {templates} templates, {faces} faces)"
    lines = [f"{title:<44} {'us/frame':>9} {'vs fixed':>9}", "-" * 64]
    for row in rows:
        ratio = f"{row.vs_reference:>8.2f}x" if row.vs_reference is not None else f"{'-':>9}"
        lines.append(f"{row.name:<44} {row.us_per_frame:>9.1f} {ratio}")
    lines.append(f"(vs fixed > 1: faster; choosing the thresholds when the gallery changes: {calibrate_ms:.0f} ms, once)")
    return "\n".join(lines)
