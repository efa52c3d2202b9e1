"""Fit a model's open-set decision on a labelled set of faces (LFW): the model card's
``open_set`` section (:mod:`faceapp.recognition.decision`), and, for a model other than
the shipped SFace, its ``tracking.same_face`` and ``visitors.join`` on its own scale.

Used by ``faceapp model import --lfw``, ``faceapp model calibrate`` and
``tools/calibrate_open_set.py``.

1. Impostor scores: every pair of embeddings of two different people (about 29 million
   on the whole LFW set). Their exceedance ``q(t)`` is kept as a table up to the 99.9th
   percentile ``u`` and a generalized Pareto distribution is fitted to the excesses above.
2. The template exponent ``beta``: how much more often a person with ``k`` templates is
   hit than with one, ``q_k(t) ~ k**beta q_1(t)``, fitted on people with 5+ images.
3. A held-out check: calibrate on half of the people, then measure on the other half how
   many strangers' faces each preset lets through in galleries of 10, 100 and all people.

Embeddings are float32 ``(N, D)`` unit rows, ``names`` the person of each row.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from faceapp.errors import FaceAppError, ModelError
from faceapp.recognition.decision import DEFAULT_TARGETS, DecisionRule, ImpostorTail, OpenSetCalibration, calibrate_gallery

__all__ = ["OpenSetFit", "TooFewFaces", "embed_people", "fit_open_set", "shortfall"]

BODY_GRID_START = 0.10
TAIL_FRACTION = 1e-3
#: The fit needs at least this many impostor pairs (1,000 of them above the tail's start),
#: this many people with 5+ images (the template exponent), and this many people with 3+
#: images in the held-out half (its check); the shared LFW set (the 7,701 images of
#: pairs.txt) has 29.6 million, 260 and about 400.
MIN_IMPOSTOR_PAIRS = 1_000_000
MIN_PEOPLE_WITH_5 = 30
MIN_HELD_OUT_KNOWN = 20
HELD_OUT_ENROLL = 2
#: How often an impostor pair of the shipped SFace reaches the similarities the app's
#: SFace-scale constants were set at: the decision floor (0.30), a track's same-face
#: check (0.25: faceapp.recognition.live) and the visitors' join (0.50). Another model's
#: card gets the similarities its impostors reach as often (:func:`mapped_constants`).
SFACE_EXCEEDANCE = {"floor": 0.006427, "same_face": 0.027145, "join": 3.1e-6}
#: The same for the thresholds the template exponent is measured at (0.30, 0.33, 0.36) and
#: the held-out check's fixed threshold of before (0.40).
SFACE_BETA_THRESHOLDS = (0.30, 0.33, 0.36)
SFACE_BETA_EXCEEDANCE = (0.006427, 0.002372, 0.001147)
SFACE_FIXED_THRESHOLD = 0.40
SFACE_FIXED_EXCEEDANCE = 1.6e-4


class TooFewFaces(FaceAppError):
    """The labelled faces are too few for an open-set fit."""


def impostor_scores(emb: np.ndarray, names: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """float32: every cross-person pair's cosine similarity."""
    out = []
    for start in range(0, len(emb), chunk):
        block = emb[start : start + chunk] @ emb[start:].T
        rows = np.arange(start, min(start + chunk, len(emb)))[:, None]
        cols = np.arange(start, len(emb))[None]
        keep = (cols > rows) & (names[rows] != names[cols])
        out.append(block[keep].astype(np.float32))
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def impostor_pair_count(names: np.ndarray) -> int:
    """How many cross-person pairs ``names`` make."""
    _, counts = np.unique(names, return_counts=True)
    n = int(counts.sum())
    return (n * (n - 1) - int(np.sum(counts * (counts - 1)))) // 2


def _halves(names: np.ndarray) -> dict[str, int]:
    """The held-out split of the people: 0 (fitted on) or 1 (held out), drawn with seed 0."""
    people = sorted(set(names.tolist()))
    order = np.random.default_rng(0).permutation(len(people))
    return {people[i]: k % 2 for k, i in enumerate(order)}


def shortfall(names: np.ndarray) -> str | None:
    """Why these faces are too few for :func:`fit_open_set` (None: enough)."""
    names = np.asarray(names)
    pairs = impostor_pair_count(names)
    people, counts = np.unique(names, return_counts=True)
    big = int(np.sum(counts >= 5))
    half = _halves(names)
    held_out = sum(1 for person, count in zip(people.tolist(), counts) if half[person] == 1 and count > HELD_OUT_ENROLL)
    if pairs < MIN_IMPOSTOR_PAIRS or big < MIN_PEOPLE_WITH_5 or held_out < MIN_HELD_OUT_KNOWN:
        return (f"{len(names):,} faces of {len(counts):,} people give {pairs:,} impostor pairs, {big} people with 5+ faces "
                f"and {held_out} held-out people with 3+; the fit needs {MIN_IMPOSTOR_PAIRS:,}, {MIN_PEOPLE_WITH_5} and "
                f"{MIN_HELD_OUT_KNOWN} (the shared LFW set, the 7,701 images of pairs.txt: 29.6 million, 260 and about 400)")
    return None


def fit_tail(scores: np.ndarray, tail_fraction: float = TAIL_FRACTION) -> ImpostorTail:
    """The impostor-score model: the empirical exceedance up to the ``1 - tail_fraction``
    quantile ``u`` (a 0.01 grid from 0.10), a generalized Pareto tail above it."""
    from scipy.stats import genpareto

    u = float(np.quantile(scores, 1 - tail_fraction))
    p_u = float(np.mean(scores > u))
    shape, _, scale = genpareto.fit(scores[scores > u] - u, floc=0)
    grid = np.round(np.arange(BODY_GRID_START, u, 0.01), 2)
    ordered = scores if np.all(scores[1:] >= scores[:-1]) else np.sort(scores)
    body = tuple((float(t), float(1 - np.searchsorted(ordered, t, side="left") / len(ordered))) for t in [*grid, u])
    return ImpostorTail(body, u, p_u, float(shape), float(scale))


def quantile_of(ordered: np.ndarray, tail: ImpostorTail, rate: float) -> float:
    """The similarity impostor scores (``ordered``: sorted ascending) exceed with
    probability ``rate``: from the scores themselves, or beyond the fitted tail's start
    from the generalized Pareto tail."""
    if rate >= tail.p_u:
        return round(float(ordered[int(np.ceil((1 - rate) * len(ordered))) - 1]), 4)
    return round(float(tail.threshold(rate)), 4)


def mapped_constants(ordered: np.ndarray, tail: ImpostorTail) -> dict[str, float]:
    """The similarities this model's impostor pairs (sorted) exceed as often as SFace's
    exceed its constants (:data:`SFACE_EXCEEDANCE`)."""
    return {name: quantile_of(ordered, tail, rate) for name, rate in SFACE_EXCEEDANCE.items()}


def template_exponent(emb: np.ndarray, names: np.ndarray, thresholds: tuple[float, ...] = SFACE_BETA_THRESHOLDS) -> float:
    """``beta`` in ``q_k ~ k**beta q_1``, from people with 5+ images against one image of
    everyone else, at ``thresholds`` (SFace's; another model's are mapped onto its scale)."""
    by = defaultdict(list)
    for index, name in enumerate(names):
        by[name].append(index)
    big = [name for name, idx in by.items() if len(idx) >= 5]
    probes = np.array([idx[0] for idx in by.values()])
    probe_names = np.array(list(by))
    ratios = []
    for threshold in thresholds:
        rates = {}
        for k in (1, 2, 3, 5):
            hits = total = 0
            for name in big:
                best = (emb[probes] @ emb[by[name][:k]].T).max(axis=1)[probe_names != name]
                hits += int((best >= threshold).sum())
                total += len(best)
            rates[k] = hits / total
        if rates[1] > 0:  # then every rates[k] > 0 too: k templates are hit at least as often
            ratios += [(np.log(k), np.log(rates[k] / rates[1])) for k in (2, 3, 5)]
    if not ratios:
        raise TooFewFaces("no impostor reaches the template exponent's thresholds: the faces are too few to fit it")
    x, y = np.array(ratios).T
    # At most 1: k templates are hit at most k times as often as one (the union bound); a
    # small set's noisy estimate can exceed it.
    return float(np.clip(np.sum(x * y) / np.sum(x * x), 0.0, 1.0))


def held_out_halves(emb: np.ndarray, names: np.ndarray, beta: float) -> tuple[OpenSetCalibration, dict[str, list[int]]]:
    """The held-out split: the calibration fitted on half of the people (chosen with seed
    0), and the other half's images, by person."""
    half = _halves(np.asarray(names))
    part = np.array([half[n] for n in names])
    calibration = OpenSetCalibration(fit_tail(impostor_scores(emb[part == 0], names[part == 0])), template_exponent=beta)
    by: dict[str, list[int]] = defaultdict(list)
    for index, name in enumerate(names):
        if half[name] == 1:
            by[name].append(index)
    return calibration, by


def held_out_check(emb: np.ndarray, names: np.ndarray, beta: float, enroll: int = HELD_OUT_ENROLL, seeds: int = 5,
                   fixed: float = SFACE_FIXED_THRESHOLD) -> list[dict]:
    """Calibrate on half of the people, measure on the other half (galleries of 10, 100,
    all): per gallery size and preset, the share of strangers' faces named and of known
    people's faces named rightly (and the same for the fixed threshold ``fixed``)."""
    calibration, by = held_out_halves(emb, names, beta)
    known = [n for n, idx in by.items() if len(idx) > enroll]
    stranger_images = [i for n, idx in by.items() if len(idx) <= enroll for i in idx]
    rows = []
    for size in sorted({s for s in (10, 100, len(known)) if s <= len(known)}):
        figures = defaultdict(list)
        for seed in range(seeds if size < len(known) else 1):
            chosen = sorted(np.random.default_rng(seed).choice(known, size, replace=False))
            gallery = [i for n in chosen for i in by[n][:enroll]]
            gallery_person = np.repeat(np.arange(len(chosen)), enroll)
            probes = [i for n in chosen for i in by[n][enroll:]]
            probe_person = np.array([k for k, n in enumerate(chosen) for _ in by[n][enroll:]])
            everyone = np.array(probes + stranger_images)
            is_known = np.arange(len(everyone)) < len(probes)
            similarity = emb[everyone] @ emb[gallery].T
            per_person = np.full((len(everyone), len(chosen)), -np.inf)
            np.maximum.at(per_person.T, gallery_person, similarity.T)
            for preset, alpha in [*DEFAULT_TARGETS.items(), (f"fixed {fixed:.2f}", None)]:
                rule = DecisionRule(fixed=fixed) if alpha is None else DecisionRule(preset)
                thresholds = calibrate_gallery(calibration, emb[gallery], gallery_person, len(chosen), rule).thresholds
                passing = np.where(per_person >= thresholds[None], per_person, -np.inf)
                named = passing.max(axis=1) > -np.inf
                who = passing.argmax(axis=1)
                figures[preset].append((named[~is_known].mean(), (named[is_known] & (who[is_known] == probe_person)).mean()))
        for preset, values in figures.items():
            fa, dir_ = np.mean(values, axis=0)
            rows.append({"people": size, "preset": preset, "target": DEFAULT_TARGETS.get(preset),
                         "strangers_named": round(float(fa), 4), "known_named_rightly": round(float(dir_), 4)})
    return rows


@dataclass(frozen=True)
class OpenSetFit:
    """The card sections a fit writes (JSON-ready dicts) and its headline figures."""

    open_set: dict[str, Any]
    tracking: dict[str, Any] | None = None  # None for the shipped SFace (its constants are the defaults)
    visitors_join: dict[str, Any] | None = None
    faces: int = 0
    impostor_pairs: int = 0
    mapped: dict[str, float] = field(default_factory=dict)

    def apply(self, card: dict[str, Any]) -> dict[str, Any]:
        """``card`` (a model card's JSON) with this fit's sections written into it."""
        card = dict(card, open_set=self.open_set)
        if self.tracking is not None:
            card["tracking"] = self.tracking
        if self.visitors_join is not None:
            old = card.get("visitors") if isinstance(card.get("visitors"), dict) else {}
            card["visitors"] = {"min_faces": old.get("min_faces", 3), **self.visitors_join}  # another scale's sweep dropped
        return card

    def summary(self) -> str:
        """One line: the data, the tail and the held-out check at the largest gallery."""
        tail = self.open_set["impostor_tail"]
        rows = [r for r in self.open_set["held_out_check"] if r["target"] is not None]
        largest = max((r["people"] for r in rows), default=0)
        check = ", ".join(f"{r['preset']} {100 * r['strangers_named']:.2f}% (target {100 * r['target']:g}%)"
                          for r in rows if r["people"] == largest)
        return (f"open-set decision fitted on {self.faces:,} faces ({self.impostor_pairs:,} impostor pairs; tail from "
                f"{tail['u']:.3f}, template exponent {self.open_set['template_exponent']:.2f}); held out, strangers named "
                f"in a gallery of {largest} people: {check}")


def embed_people(recognizer: Any, root: Any, *, policy: Any = None, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The embeddings (float32 ``(N, D)`` unit rows) and person names of the faces found in
    a labelled folder (LFW's ``images/NAME_NNNN.jpg``, or one folder per person; see
    :func:`faceapp.evaluation.ident.discover_people`); images without a face are left out
    (``policy``: a :class:`~faceapp.vision.faces.FacePolicy` with ``no_face="skip"``; default
    one detection pass)."""
    from faceapp.evaluation.ident import discover_people
    from faceapp.evaluation.images import embed_images
    from faceapp.vision.faces import FacePolicy

    people = discover_people(root)
    paths = [p for ps in people.values() for p in ps]
    names = np.array([name for name, ps in people.items() for _ in ps])
    result = embed_images(recognizer, paths, policy or FacePolicy(no_face="skip"), flip=False, progress=progress,
                          description="labelled faces")
    return result.plain[result.usable], names[result.usable]


def fit_open_set(emb: np.ndarray, names: np.ndarray, *, sface_scale: bool = False, source: str = "") -> OpenSetFit:
    """Fit the open-set decision of a model on its embeddings ``emb`` (float32 ``(N, D)``
    unit rows) of labelled faces (``names``: the person of each row).

    ``sface_scale``: the model is the shipped SFace, whose constants (the floor 0.30, the
    template exponent's thresholds) are used as they are; any other model gets the
    similarities its impostors reach as often as SFace's reach them, and its same-face and
    visitors' join constants. Raises :class:`TooFewFaces` when the faces are too few."""
    names = np.asarray(names)
    emb = np.asarray(emb)
    broken = int(np.count_nonzero(~np.isfinite(emb).all(axis=1))) if emb.size else 0
    if broken:
        raise ModelError(f"{broken} of {len(emb)} embeddings are not finite numbers (NaN or infinite): the model is broken")
    reason = shortfall(names)
    if reason is not None:
        raise TooFewFaces(f"too few faces for an open-set fit: {reason}")
    scores = np.sort(impostor_scores(emb, names))
    tail = fit_tail(scores)
    mapped = mapped_constants(scores, tail)
    if sface_scale:
        beta = template_exponent(emb, names)
        check = held_out_check(emb, names, beta)
    else:  # SFace's thresholds of these measurements, on this model's scale
        beta = template_exponent(emb, names, tuple(quantile_of(scores, tail, r) for r in SFACE_BETA_EXCEEDANCE))
        check = held_out_check(emb, names, beta, fixed=quantile_of(scores, tail, SFACE_FIXED_EXCEEDANCE))
    described = source or "faceapp.evaluation.open_set_fit"
    open_set = {
        "impostor_tail": {"body": [list(p) for p in tail.body], "u": tail.u, "p_u": tail.p_u,
                          "shape": tail.shape, "scale": tail.scale},
        "template_exponent": round(beta, 4),
        "cohort_weight": 0.5,
        "cohort_top": 20,
        "floor": 0.30 if sface_scale else mapped["floor"],
        "ceiling": 0.95,
        "targets": dict(DEFAULT_TARGETS),
        "source": (f"{described}: {len(emb)} images, {len(scores):,} impostor pairs; the held-out check calibrates on "
                   "half of the people and measures on the other half"),
        "held_out_check": check,
    }
    if sface_scale:
        return OpenSetFit(open_set, faces=len(emb), impostor_pairs=len(scores), mapped=mapped)
    tracking = {"same_face": mapped["same_face"],
                "source": f"{described}: impostors exceed it as often as SFace's exceed 0.25 ({SFACE_EXCEEDANCE['same_face']:g})"}
    join = {"join": mapped["join"],
            "source": f"{described}: impostors exceed the join as often as SFace's exceed its 0.50 ({SFACE_EXCEEDANCE['join']:g})"}
    return OpenSetFit(open_set, tracking, join, faces=len(emb), impostor_pairs=len(scores), mapped=mapped)
