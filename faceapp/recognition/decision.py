"""The open-set decision: when is the best-matching person named?

A fixed similarity threshold lets more strangers through as the gallery grows: a
stranger is compared with every enrolled person, and the best of N impostor scores rises
with N. So the presets are *false-alarm targets* (strict 0.1 %, balanced 1 %, lenient 5 %
of strangers' faces named), and the threshold that meets the target is computed for the
gallery in use from a model of impostor scores measured on LFW (in the model card's
``open_set`` section, written by ``tools/calibrate_open_set.py``):

* ``q(t)``, the chance that one stranger's face scores at least ``t`` against one
  template of someone else: the empirical distribution up to ``u``, a generalized Pareto
  tail above it (extreme-value theory; it extrapolates to the rare scores of large galleries).
* A person with ``k`` templates is "hit" about ``k**beta`` times as often as with one
  (templates of one person are correlated: ``beta`` < 1, measured on LFW).
* A stranger is named by mistake with probability ``alpha`` when
  ``q(T) * sum_p k_p**beta = alpha``: that gives the gallery's threshold ``T``.
* Each person's threshold is then moved by ``cohort_weight`` times how much their
  templates resemble other enrolled people more than the gallery's median person does
  (people who attract impostors get a stricter threshold), never below ``floor``.
* A per-person override (``faceapp gallery threshold NAME VALUE``) replaces the result.

:func:`calibrate_gallery` is computed when the gallery changes (one matrix product with
a sample of the templates); matching a face stays one product plus per-person arrays.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Preset -> the share of strangers' faces allowed to be named (false-alarm target).
DEFAULT_TARGETS = {"strict": 0.001, "balanced": 0.01, "lenient": 0.05}
COHORT_SAMPLE = 2000  # at most this many templates serve as everyone's cohort
COHORT_BLOCK = 32_768  # templates compared with the cohort at a time (memory: COHORT_SAMPLE x this floats)


@dataclass(frozen=True)
class ImpostorTail:
    """``exceedance(t)``: P(one stranger's face scores >= t against one template).

    ``body``: ``(t, q)`` points with t ascending (q descending) up to ``u``; above ``u``,
    ``p_u`` times a generalized Pareto survival function (``shape``, ``scale``)."""

    body: tuple[tuple[float, float], ...]
    u: float
    p_u: float
    shape: float
    scale: float

    def _gpd_isf(self, p: float) -> float:
        if abs(self.shape) < 1e-9:
            return -self.scale * math.log(p)
        return self.scale / self.shape * (p ** (-self.shape) - 1.0)

    def _curve(self) -> tuple[np.ndarray, np.ndarray]:
        """The body as arrays: scores and log exceedances (made once)."""
        try:
            return self._arrays  # type: ignore[attr-defined]
        except AttributeError:
            arrays = (np.array([p[0] for p in self.body]), np.log([max(p[1], 1e-300) for p in self.body]))
            object.__setattr__(self, "_arrays", arrays)
            return arrays

    def exceedances(self, scores: np.ndarray) -> np.ndarray:
        """float64: :meth:`exceedance` of every score of ``scores``."""
        t = np.asarray(scores, np.float64)
        ts, qs = self._curve()
        body = np.exp(np.interp(t, ts, qs))
        excess = np.maximum(t - self.u, 0.0)
        if abs(self.shape) < 1e-9:
            tail = np.exp(-excess / self.scale)
        else:
            base = 1.0 + self.shape * excess / self.scale
            tail = np.where(base > 0, np.maximum(base, 1e-300) ** (-1.0 / self.shape), 0.0)
        return np.where(t >= self.u, self.p_u * tail, body)

    def exceedance(self, t: float) -> float:
        return float(self.exceedances(np.array([t]))[0])

    def threshold(self, q: float) -> float:
        """The score ``t`` with ``exceedance(t) == q`` (q in (0, 1))."""
        q = min(max(q, 1e-300), 1.0)
        if q <= self.p_u:
            return self.u + self._gpd_isf(q / self.p_u)
        ts, qs = self._curve()
        return float(np.interp(math.log(q), qs[::-1], ts[::-1]))


@dataclass(frozen=True)
class OpenSetCalibration:
    """The model card's ``open_set`` section (see the module docstring)."""

    tail: ImpostorTail
    template_exponent: float = 0.9
    cohort_weight: float = 0.5
    cohort_top: int = 20
    floor: float = 0.30
    ceiling: float = 0.95
    targets: Mapping[str, float] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.targets is None:
            object.__setattr__(self, "targets", dict(DEFAULT_TARGETS))

    @classmethod
    def from_card(cls, data: Mapping[str, Any] | None) -> OpenSetCalibration | None:
        """Parse a card's ``open_set`` section (None when the card has none)."""
        if not data:
            return None
        tail = data["impostor_tail"]
        return cls(
            tail=ImpostorTail(tuple((float(t), float(q)) for t, q in tail["body"]), float(tail["u"]), float(tail["p_u"]),
                              float(tail["shape"]), float(tail["scale"])),
            template_exponent=float(data.get("template_exponent", 0.9)),
            cohort_weight=float(data.get("cohort_weight", 0.5)),
            cohort_top=int(data.get("cohort_top", 20)),
            floor=float(data.get("floor", 0.30)),
            ceiling=float(data.get("ceiling", 0.95)),
            targets={str(k): float(v) for k, v in data.get("targets", DEFAULT_TARGETS).items()},
        )

    def trials(self, template_counts: np.ndarray) -> float:
        """The gallery's effective number of independent comparisons: ``sum k_p**beta``."""
        counts = np.asarray(template_counts, np.float64)
        return float(np.sum(counts[counts > 0] ** self.template_exponent))

    def gallery_threshold(self, template_counts: np.ndarray, alpha: float) -> float:
        """The threshold naming a stranger with probability ``alpha`` in this gallery."""
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"a false-alarm target must be in (0, 1), got {alpha}")
        trials = max(self.trials(template_counts), 1.0)
        return float(np.clip(self.tail.threshold(alpha / trials), self.floor, self.ceiling))

    def expected_false_alarms(self, template_counts: np.ndarray, threshold: float | np.ndarray) -> float:
        """The share of strangers' faces the model predicts named when each person has
        ``threshold`` (one number, or one per person): ``sum_p q(T_p) * k_p**beta``."""
        counts = np.asarray(template_counts, np.float64)
        thresholds = np.broadcast_to(np.asarray(threshold, np.float64), counts.shape)
        present = counts > 0
        hits = self.tail.exceedances(thresholds[present]) * counts[present] ** self.template_exponent
        return float(min(1.0, hits.sum()))


def cohort_scores(embeddings: np.ndarray, person_index: np.ndarray, people: int, top: int, sample: int = COHORT_SAMPLE,
                  seed: int = 0, block: int = COHORT_BLOCK) -> np.ndarray:
    """float64 ``(people,)``: for each person, the mean of the ``top`` highest
    similarities between their templates and (a sample of) other people's templates:
    how much they look like others. NaN for a person alone in the gallery.

    The people are taken in blocks of about ``block`` templates (the result does not
    depend on it), so memory stays ``sample x block`` floats at a million templates."""
    embeddings = np.asarray(embeddings, np.float32)
    person_index = np.asarray(person_index, np.int64)
    if len(embeddings) > sample:
        chosen = np.sort(np.random.default_rng(seed).choice(len(embeddings), sample, replace=False))
    else:
        chosen = np.arange(len(embeddings))
    order = np.argsort(person_index, kind="stable")
    present, starts = np.unique(person_index[order], return_index=True)
    ends = np.append(starts[1:], len(order))
    scores = np.full(people, np.nan)
    owners = person_index[chosen]
    queries = embeddings[chosen]
    # Each present person's number of sampled templates of someone else; k as for all people at once.
    own_in_sample = np.zeros(len(present), np.int64)
    np.add.at(own_in_sample, np.searchsorted(present, owners), 1)
    counts = len(chosen) - own_in_sample
    k = int(min(top, counts.max())) if len(counts) else 0
    if not k:
        return scores
    first = 0
    while first < len(present):
        # People first..last-1: at least one, at most about `block` templates.
        last = max(first + 1, int(np.searchsorted(ends, starts[first] + block, side="right")))
        rows = order[starts[first] : ends[last - 1]]
        similarity = queries @ embeddings[rows].T  # (S, templates of these people), each person's side by side
        best = np.maximum.reduceat(similarity, starts[first:last] - starts[first], axis=1).T  # (people, S)
        best = np.where(present[first:last, None] != owners[None, :], best, -np.inf)
        highest = -np.partition(-best, k - 1, axis=1)[:, :k]  # the k highest of each row (unordered)
        # A person with fewer than k others in the sample: the mean over those there are.
        finite = np.isfinite(highest)
        means = np.where(finite, highest, 0.0).sum(axis=1) / np.maximum(finite.sum(axis=1), 1)
        known = counts[first:last] > 0
        scores[present[first:last][known]] = means[known]
        first = last
    return scores


@dataclass(frozen=True)
class DecisionRule:
    """What decides whether the best-matching person is named: a preset (``strict``,
    ``balanced``, ``lenient``: a false-alarm target when the model card is calibrated, the
    card's fixed threshold otherwise) or one fixed similarity threshold for everyone."""

    preset: str | None = None
    fixed: float | None = None

    def __post_init__(self) -> None:
        if (self.preset is None) == (self.fixed is None):
            raise ValueError("a decision rule is either a preset or a fixed threshold")
        if self.fixed is not None and not -1.0 <= self.fixed <= 1.0:  # NaN too
            raise ValueError(f"a fixed threshold is a similarity in [-1, 1], not {self.fixed}")

    @property
    def label(self) -> str:
        """``balanced`` or ``fixed 0.420``: what the user chose, in words."""
        return self.preset if self.preset is not None else f"fixed {self.fixed:.3f}"

    def to_text(self) -> str:
        """The rule as it is given on the command line: a preset name or a number."""
        return self.preset if self.preset is not None else f"{self.fixed:g}"


@dataclass(frozen=True)
class GalleryCalibration:
    """The decision chosen for one gallery: everything ``faceapp gallery calibrate`` shows.

    Per-person arrays are ``(people,)`` in the gallery matrix's ``names`` order."""

    rule: DecisionRule
    target: float | None  # the false-alarm target (None: a fixed threshold)
    gallery_threshold: float  # before the per-person terms
    templates: np.ndarray  # int64: positive templates per person
    cohort: np.ndarray  # float64: mean of the top similarities to other people (NaN: not computed)
    automatic: np.ndarray  # float32: the threshold the rule gives each person
    overrides: np.ndarray  # float64: the person's own threshold (NaN: automatic)
    thresholds: np.ndarray  # float32: what matching uses
    expected_false_alarms: float | None  # the model's prediction for these thresholds (None: uncalibrated model)


def _solve_base(calibration: OpenSetCalibration, counts: np.ndarray, shift: np.ndarray, target: float) -> float:
    """The gallery threshold ``T`` whose per-person thresholds ``clip(T + shift)`` make
    the predicted share of strangers named equal ``target`` (bisection; the prediction
    falls as ``T`` rises)."""
    moved = shift[counts > 0]

    def predicted(base: float) -> float:
        return calibration.expected_false_alarms(counts, np.clip(base + shift, calibration.floor, calibration.ceiling))

    low, high = calibration.floor - float(moved.max(initial=0.0)), calibration.ceiling - float(moved.min(initial=0.0))
    for _ in range(40):
        middle = (low + high) / 2
        low, high = (middle, high) if predicted(middle) > target else (low, middle)
    return float(np.clip(high, calibration.floor, calibration.ceiling))


def calibrate_gallery(
    calibration: OpenSetCalibration | None,
    embeddings: np.ndarray,
    person_index: np.ndarray,
    people: int,
    rule: DecisionRule,
    *,
    preset_thresholds: Mapping[str, float] | None = None,
    overrides: np.ndarray | None = None,
) -> GalleryCalibration:
    """Each person's threshold for ``rule`` in the gallery of ``embeddings`` (float32
    ``(N, D)`` unit rows) owned by ``person_index`` (``(N,)`` into ``people``).

    A fixed rule gives everyone that threshold. A preset is the calibrated false-alarm
    target (:meth:`OpenSetCalibration.gallery_threshold`, then moved per person by the
    cohort term); without a calibration it is ``preset_thresholds[preset]``.
    ``overrides`` (``(people,)``, NaN = automatic) replace the result person by person."""
    counts = np.bincount(np.asarray(person_index, np.int64), minlength=people)[:people]
    cohort = np.full(people, np.nan)
    target = None
    if rule.fixed is not None or calibration is None or rule.preset not in calibration.targets:
        if rule.fixed is not None:
            base = float(rule.fixed)
        elif preset_thresholds and rule.preset in preset_thresholds:
            base = float(preset_thresholds[rule.preset])
        else:
            raise ValueError(f"no threshold is known for the preset {rule.preset!r}")
        automatic = np.full(people, base)
    else:
        target = float(calibration.targets[rule.preset])
        base = calibration.gallery_threshold(counts, target)
        automatic = np.full(people, base)
        if calibration.cohort_weight and people > 2 and len(embeddings):
            cohort = cohort_scores(embeddings, person_index, people, calibration.cohort_top)
            known = np.isfinite(cohort)
            if known.sum() > 2:
                shift = np.zeros(people)
                shift[known] = calibration.cohort_weight * (cohort[known] - np.median(cohort[known]))
                base = _solve_base(calibration, counts, shift, target)
                automatic = np.clip(base + shift, calibration.floor, calibration.ceiling)
    own = np.full(people, np.nan) if overrides is None else np.asarray(overrides, np.float64)[:people]
    thresholds = np.where(np.isfinite(own), own, automatic).astype(np.float32)
    expected = calibration.expected_false_alarms(counts, thresholds) if calibration is not None and people else None
    return GalleryCalibration(rule, target, float(base), counts.astype(np.int64), cohort, automatic.astype(np.float32),
                              own, thresholds, expected)


#: A face scoring this rarely (or less) as a stranger against one template is taken for the person.
SAME_PERSON_EXCEEDANCE = 1e-6


def same_person_level(calibration: OpenSetCalibration | None, presets: Mapping[str, float]) -> float:
    """The similarity above which a face is surely the person themselves: a stranger's
    face reaches it about once in a million comparisons (the impostor tail), else the
    highest preset threshold."""
    if calibration is not None:
        return calibration.tail.threshold(SAME_PERSON_EXCEEDANCE)
    return max(presets.values())


def looks_like_them(own: np.ndarray, negatives: np.ndarray, same_level: float) -> str | None:
    """Why faces offered as "not this person" (float32 ``(M, D)`` unit rows) look like
    the person themselves (their templates ``own``, ``(K, D)``), or None.

    They do when one of them scores ``same_level`` or more against the person, or when
    one of the person's own templates is nearer to them than to the person's other
    templates (it would no longer be named: leave-one-out)."""
    if not len(own) or not len(negatives):
        return None
    similarity = float((negatives @ own.T).max())
    if similarity >= same_level:
        return f"similarity {similarity:.3f}, which strangers almost never reach"
    if len(own) >= 2:
        own_similarity = own @ own.T
        np.fill_diagonal(own_similarity, -np.inf)
        vetoed = int(np.sum((own @ negatives.T).max(axis=1) >= own_similarity.max(axis=1)))
        if vetoed:
            return f"{vetoed} of their own {len(own)} enrolment photo(s) would no longer be named"
    return None
