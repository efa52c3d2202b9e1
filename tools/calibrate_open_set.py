"""Calibrate the open-set decision of the shipped model on LFW and write it into the
model card (``models/sface_2021dec.json``, section ``open_set``).

    python tools/calibrate_open_set.py [--lfw DIR] [--model DIR] [--write] [--cache FILE.npz]

``--model DIR`` calibrates another model (e.g. one made by ``faceapp train``): its
directory's card gets the section; ``--model DIR/NAME.json`` (or ``accurate``, the fused
SFace + dlib model) that card. Without it, the shipped model.

1. Every LFW image is embedded by the app's own pipeline (detector, alignment, SFace).
2. Impostor scores: every pair of images of two different people (about 29 million).
   Their exceedance ``q(t)`` is kept as a table up to the 99.9th percentile ``u`` and a
   generalized Pareto distribution is fitted to the excesses above ``u``.
3. The template exponent ``beta``: how much more often a person with ``k`` templates is
   hit than with one, ``q_k(t) ~ k**beta q_1(t)``, fitted on people with 5+ images.
4. A held-out check: calibrate on half of the people, then measure on the other half how
   many strangers' faces each preset lets through in galleries of 10, 100 and all people.

Without ``--write`` it only prints what it would write.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from faceapp.recognition.decision import DEFAULT_TARGETS, DecisionRule, ImpostorTail, OpenSetCalibration, calibrate_gallery

CARD = ROOT / "models" / "sface_2021dec.json"
BODY_GRID_START = 0.10
#: How often an impostor pair of the shipped SFace reaches the similarities the app's
#: SFace-scale constants were set at: the decision floor (0.30), a track's same-face
#: check (0.25: faceapp.recognition.live) and the visitors' join (0.50). Another model's
#: card gets the similarities its impostors reach as often (:func:`mapped_constants`).
SFACE_EXCEEDANCE = {"floor": 0.006427, "same_face": 0.027145, "join": 3.1e-6}
#: The same for the thresholds the template exponent is measured at (0.30, 0.33, 0.36) and
#: the held-out check's fixed threshold of before (0.40).
SFACE_BETA_EXCEEDANCE = (0.006427, 0.002372, 0.001147)
SFACE_FIXED_EXCEEDANCE = 1.6e-4


def embed_lfw(lfw: Path, cache: Path | None, model: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    if cache and cache.is_file():
        data = np.load(cache, allow_pickle=True)
        return data["emb"][data["usable"]], data["names"][data["usable"]]
    from faceapp.evaluation.ident import discover_people
    from faceapp.evaluation.images import embed_images
    from faceapp.recognition.pipeline import PipelineConfig, Recognizer
    from faceapp.vision.faces import FacePolicy

    recognizer = Recognizer.create(PipelineConfig(model_dir=model, device="cpu"))
    people = discover_people(lfw)
    paths = [p for ps in people.values() for p in ps]
    names = np.array([name for name, ps in people.items() for _ in ps])
    result = embed_images(recognizer, paths, FacePolicy(no_face="skip"), flip=False, progress=True)
    if cache:
        np.savez(cache, emb=result.plain, usable=result.usable, names=names)
    return result.plain[result.usable], names[result.usable]


def card_path(model: Path) -> Path:
    """The card file of a model directory (``card.json`` for trained models), or the card
    file ``model`` names."""
    from faceapp.paths import model_card_file

    named = model_card_file(model)
    if named is not None:
        return named
    for name in ("card.json", CARD.name):
        if (model / name).is_file():
            return model / name
    for path in sorted(model.glob("*.json")):  # e.g. the NAME.json of `faceapp model import`
        try:
            if "model_id" in json.loads(path.read_text(encoding="utf-8")):
                return path
        except (OSError, ValueError):
            continue
    sys.exit(f"no model card in {model}")


def impostor_scores(emb: np.ndarray, names: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Every cross-person pair's cosine similarity (float32)."""
    out = []
    for start in range(0, len(emb), chunk):
        block = emb[start : start + chunk] @ emb[start:].T
        rows = np.arange(start, min(start + chunk, len(emb)))[:, None]
        cols = np.arange(start, len(emb))[None]
        keep = (cols > rows) & (names[rows] != names[cols])
        out.append(block[keep].astype(np.float32))
    return np.concatenate(out)


def fit_tail(scores: np.ndarray, tail_fraction: float = 1e-3) -> ImpostorTail:
    from scipy.stats import genpareto

    u = float(np.quantile(scores, 1 - tail_fraction))
    p_u = float(np.mean(scores > u))
    shape, _, scale = genpareto.fit(scores[scores > u] - u, floc=0)
    grid = np.round(np.arange(BODY_GRID_START, u, 0.01), 2)
    ordered = np.sort(scores)
    body = tuple((float(t), float(1 - np.searchsorted(ordered, t, side="left") / len(ordered))) for t in [*grid, u])
    return ImpostorTail(body, u, p_u, float(shape), float(scale))


def quantile_of(scores: np.ndarray, tail: ImpostorTail, rate: float) -> float:
    """The similarity impostor ``scores`` exceed with probability ``rate``: from the scores
    themselves, or beyond the fitted tail's start from the generalized Pareto tail."""
    if rate >= tail.p_u:
        ordered = np.sort(scores)
        return round(float(ordered[int(np.ceil((1 - rate) * len(ordered))) - 1]), 4)
    # p_u * (1 + shape * x / scale) ** (-1 / shape) = rate
    x = (tail.scale / tail.shape * ((rate / tail.p_u) ** (-tail.shape) - 1) if abs(tail.shape) > 1e-9
         else -tail.scale * np.log(rate / tail.p_u))
    return round(float(tail.u + x), 4)


def mapped_constants(scores: np.ndarray, tail: ImpostorTail) -> dict[str, float]:
    """The similarities this model's impostor pairs exceed as often as SFace's exceed its
    constants (:data:`SFACE_EXCEEDANCE`)."""
    return {name: quantile_of(scores, tail, rate) for name, rate in SFACE_EXCEEDANCE.items()}


def template_exponent(emb: np.ndarray, names: np.ndarray, thresholds: tuple[float, ...] = (0.30, 0.33, 0.36)) -> float:
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
        ratios += [(np.log(k), np.log(rates[k] / rates[1])) for k in (2, 3, 5)]
    x, y = np.array(ratios).T
    return float(np.sum(x * y) / np.sum(x * x))


def held_out_halves(emb: np.ndarray, names: np.ndarray, beta: float) -> tuple[OpenSetCalibration, dict[str, list[int]]]:
    """The held-out split: the calibration fitted on half of the people (chosen with seed
    0), and the other half's images, by person."""
    people = sorted(set(names))
    order = np.random.default_rng(0).permutation(len(people))
    half = {people[i]: k % 2 for k, i in enumerate(order)}
    part = np.array([half[n] for n in names])
    calibration = OpenSetCalibration(fit_tail(impostor_scores(emb[part == 0], names[part == 0])), template_exponent=beta)
    by: dict[str, list[int]] = defaultdict(list)
    for index, name in enumerate(names):
        if half[name] == 1:
            by[name].append(index)
    return calibration, by


def held_out_check(emb: np.ndarray, names: np.ndarray, beta: float, enroll: int = 2, seeds: int = 5,
                   fixed: float = 0.40) -> list[dict]:
    """Calibrate on half of the people, measure on the other half (galleries of 10, 100, all)."""
    calibration, by = held_out_halves(emb, names, beta)
    known = [n for n, idx in by.items() if len(idx) > enroll]
    stranger_images = [i for n, idx in by.items() if len(idx) <= enroll for i in idx]
    rows = []
    for size in (10, 100, len(known)):
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


def spread_check(emb: np.ndarray, names: np.ndarray, beta: float, enroll: int = 3, weights=(0.0, 0.25, 0.5, 1.0)) -> list[dict]:
    """Would a per-person term from the person's own template spread help? Thresholds
    moved by ``w * (spread - median spread)`` on top of the look-alike term, the base
    re-solved for the balanced target; measured on the held-out half."""
    from faceapp.recognition.decision import _solve_base

    calibration, by = held_out_halves(emb, names, beta)
    known = [n for n, idx in by.items() if len(idx) > enroll]
    strangers = [i for n, idx in by.items() if len(idx) <= enroll for i in idx]
    rows = []
    for weight in weights:
        for size in (100, len(known)):
            figures = []
            for seed in range(3 if size < len(known) else 1):
                chosen = sorted(np.random.default_rng(seed).choice(known, size, replace=False))
                gallery = [i for n in chosen for i in by[n][:enroll]]
                owner = np.repeat(np.arange(size), enroll)
                probes = [i for n in chosen for i in by[n][enroll:]]
                probe_owner = np.array([k for k, n in enumerate(chosen) for _ in by[n][enroll:]])
                chosen_rule = calibrate_gallery(calibration, emb[gallery], owner, size, DecisionRule("balanced"))
                own = emb[gallery].reshape(size, enroll, -1)
                spread = 1 - (np.einsum("pkd,pld->p", own, own) - enroll) / (enroll * (enroll - 1))
                cohort = np.nan_to_num(chosen_rule.cohort - np.nanmedian(chosen_rule.cohort))
                shift = calibration.cohort_weight * cohort + weight * (spread - np.median(spread))
                base = _solve_base(calibration, np.full(size, enroll), shift, 0.01)
                thresholds = np.clip(base + shift, calibration.floor, calibration.ceiling)
                everyone = np.array(probes + strangers)
                is_known = np.arange(len(everyone)) < len(probes)
                per_person = np.full((len(everyone), size), -np.inf)
                np.maximum.at(per_person.T, owner, (emb[everyone] @ emb[gallery].T).T)
                passing = np.where(per_person >= thresholds[None], per_person, -np.inf)
                named, who = passing.max(axis=1) > -np.inf, passing.argmax(axis=1)
                figures.append((named[~is_known].mean(), (named[is_known] & (who[is_known] == probe_owner)).mean()))
            fa, dir_ = np.mean(figures, axis=0)
            rows.append({"spread_weight": weight, "people": size, "strangers_named": round(float(fa), 5),
                         "known_named_rightly": round(float(dir_), 4)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lfw", type=Path, default=ROOT.parent / "shared" / "data" / "lfw")
    parser.add_argument("--cache", type=Path, help="keep the LFW embeddings in this .npz (and reuse it)")
    parser.add_argument("--model", type=Path, help="model directory, card file or 'accurate' (default: the shipped SFace)")
    parser.add_argument("--write", action="store_true", help="write the section into the model card")
    parser.add_argument("--spread-check", action="store_true", help="only measure a template-spread term (see spread_check)")
    args = parser.parse_args(argv)
    emb, names = embed_lfw(args.lfw, args.cache, args.model)
    if args.spread_check:
        for row in spread_check(emb, names, template_exponent(emb, names)):
            print(row)
        return 0
    scores = impostor_scores(emb, names)
    tail = fit_tail(scores)
    shipped = args.model is None or card_path(args.model).resolve() == CARD.resolve()
    mapped = mapped_constants(scores, tail)
    if shipped:
        beta = template_exponent(emb, names)
        check = held_out_check(emb, names, beta)
    else:  # SFace's thresholds of these measurements, on this model's scale
        beta = template_exponent(emb, names, tuple(quantile_of(scores, tail, r) for r in SFACE_BETA_EXCEEDANCE))
        check = held_out_check(emb, names, beta, fixed=quantile_of(scores, tail, SFACE_FIXED_EXCEEDANCE))
    section = {
        "impostor_tail": {"body": [list(p) for p in tail.body], "u": tail.u, "p_u": tail.p_u,
                          "shape": tail.shape, "scale": tail.scale},
        "template_exponent": round(beta, 4),
        "cohort_weight": 0.5,
        "cohort_top": 20,
        "floor": 0.30 if shipped else mapped["floor"],
        "ceiling": 0.95,
        "targets": DEFAULT_TARGETS,
        "source": (f"tools/calibrate_open_set.py on the shared LFW set: {len(emb)} images, {len(scores):,} impostor pairs; "
                   "the held-out check calibrates on half of the people and measures on the other half"),
        "held_out_check": check,
    }
    print(json.dumps({k: v for k, v in section.items() if k != "impostor_tail"}, indent=1))
    print(f"tail: u={tail.u:.4f} p_u={tail.p_u:.2e} shape={tail.shape:.4f} scale={tail.scale:.4f}; beta={beta:.3f}; "
          f"SFace's constants on this model's scale: {mapped}")
    if args.write:
        from faceapp.embedding.modelcard import load_card

        path = CARD if shipped else card_path(args.model)
        card = json.loads(path.read_text(encoding="utf-8"))
        card["open_set"] = section
        if not shipped:  # SFace's own constants, mapped onto this model's similarities
            card["tracking"] = {"same_face": mapped["same_face"], "source": "tools/calibrate_open_set.py: impostors exceed it "
                                f"as often as SFace's exceed 0.25 ({SFACE_EXCEEDANCE['same_face']:g})"}
            card["visitors"] = {**card.get("visitors", {"min_faces": 3}), "join": mapped["join"],
                                "source": (f"tools/calibrate_open_set.py: impostors exceed the join as often as SFace's "
                                           f"exceed its 0.50 ({SFACE_EXCEEDANCE['join']:g})")}
        path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
        print(f"written to {path} (model {load_card(path).model_id})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
