"""Calibrate the open-set decision of the shipped model on LFW and write it into the
model card (``models/sface_2021dec.json``, section ``open_set``); the fit itself is
:mod:`faceapp.evaluation.open_set_fit` (also run by ``faceapp model calibrate`` and
``faceapp model import --lfw``). This tool adds the shipped card, ``--cache`` and the
research-only ``--spread-check``.

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
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from faceapp.evaluation.open_set_fit import embed_people, fit_open_set, held_out_halves, template_exponent
from faceapp.recognition.decision import DecisionRule, calibrate_gallery

CARD = ROOT / "models" / "sface_2021dec.json"


def embed_lfw(lfw: Path, cache: Path | None, model: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    if cache and cache.is_file():
        data = np.load(cache, allow_pickle=True)
        keep = data["usable"] if "usable" in data else slice(None)  # caches of before kept every image
        return data["emb"][keep], data["names"][keep]
    from faceapp.recognition.pipeline import PipelineConfig, Recognizer

    recognizer = Recognizer.create(PipelineConfig(model_dir=model or "sface", device="cpu"))  # not the default (fused) model
    emb, names = embed_people(recognizer, lfw, progress=True)
    if cache:
        np.savez(cache, emb=emb, names=names)
    return emb, names


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
    shipped = args.model is None or card_path(args.model).resolve() == CARD.resolve()
    fit = fit_open_set(emb, names, sface_scale=shipped, source="tools/calibrate_open_set.py on the shared LFW set")
    print(json.dumps({k: v for k, v in fit.open_set.items() if k != "impostor_tail"}, indent=1))
    print(fit.summary())
    print(f"SFace's constants on this model's scale: {fit.mapped}")
    if args.write:
        from faceapp.embedding.modelcard import load_card

        path = CARD if shipped else card_path(args.model)
        card = fit.apply(json.loads(path.read_text(encoding="utf-8")))
        path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
        print(f"written to {path} (model {load_card(path).model_id})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
