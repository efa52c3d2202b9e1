"""Identification figures at the app's *actual* decision rule, and per gallery size.

The app does not name a face at one fixed threshold: its
:class:`~faceapp.recognition.decision.DecisionRule` gives each gallery (and each person)
its thresholds. Here every split's gallery is turned into the same
:class:`~faceapp.recognition.matching.Matcher` the live loop builds
(:meth:`Recognizer.matcher_for`), and its decisions are counted:

* ``dir``: known people's probes named rightly (detection and identification rate);
* ``false_alarm_rate``: strangers' probes given any name;
* ``precision`` / ``recall`` / ``f1`` of "named" for the known probes.

:func:`gallery_size_table` draws galleries of several sizes (e.g. 10, 100, 1000 people)
from one dataset and measures each decision rule on them: the strangers are everybody
not drawn, so a fixed threshold's false alarms can be seen to grow with the gallery.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from faceapp.evaluation.images import DatasetError
from faceapp.evaluation.open_set import known_unknown_prf
from faceapp.storage.records import GalleryMatrix

logger = logging.getLogger(__name__)


def split_gallery(embeddings: np.ndarray, rows: np.ndarray, labels: np.ndarray, model_id: str | None) -> GalleryMatrix:
    """The gallery matrix of templates ``embeddings[rows]`` (float32 unit rows) whose
    people are ``labels`` (``(len(rows),)``), people in name order."""
    names, index = np.unique(np.asarray(labels).astype(str), return_inverse=True)
    return GalleryMatrix(np.asarray(embeddings[rows], np.float32), index.astype(np.int64), tuple(names), model_id)


def decision_point(recognizer: Any, gallery: GalleryMatrix, probes: np.ndarray, labels: np.ndarray, known: np.ndarray,
                   rule: Any = None) -> dict[str, Any]:
    """The figures of deciding ``probes`` (float32 ``(P, D)``, people ``labels``, ``known``
    bool ``(P,)``) against ``gallery`` by ``rule`` (default: the recognizer's)."""
    chosen = recognizer.calibrate(gallery, rule)
    matcher = recognizer.matcher_for(gallery, calibrated=chosen)
    matches = matcher.match(probes, unique=False)  # separate photos, not faces of one frame
    named = np.array([m.name is not None for m in matches], bool)
    right = np.array([m.name == label for m, label in zip(matches, np.asarray(labels).astype(str))], bool)
    prf = known_unknown_prf(named.astype(np.float64), known, 0.5)
    return {
        "rule": chosen.rule.label,
        "target": chosen.target,
        "gallery_threshold": chosen.gallery_threshold,
        "expected_false_alarms": chosen.expected_false_alarms,
        "dir": float(np.mean(right[known])) if known.any() else float("nan"),
        "false_alarm_rate": float(np.mean(named[~known])) if (~known).any() else float("nan"),
        "precision": prf.precision,
        "recall": prf.recall,
        "f1": prf.f1,
    }


def rules_to_compare(recognizer: Any) -> list[Any]:
    """The rules a report compares: the app's own, every preset, and the fixed threshold
    the app used before its decision was calibrated (the card's default preset value)."""
    from faceapp.recognition.decision import DecisionRule

    card = recognizer.card
    rules = [recognizer.decision] + [DecisionRule(p) for p in card.threshold_presets]
    rules.append(DecisionRule(fixed=card.threshold_presets[card.default_preset]))
    unique: list[Any] = []
    for rule in rules:
        if rule not in unique:
            unique.append(rule)
    return unique


def gallery_size_table(
    recognizer: Any,
    embeddings: np.ndarray,
    people: Mapping[str, Sequence[int]],
    sizes: Sequence[int],
    *,
    enroll: int = 1,
    draws: int = 3,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """For each gallery size N: draw N people with more than ``enroll`` usable images
    (``people``: name -> rows of ``embeddings``), enroll their first ``enroll`` images,
    probe with the rest; every other person's images are strangers. ``draws`` random
    draws for sizes up to half of the eligible people (one otherwise). Each rule of
    :func:`rules_to_compare` is measured; also closed-set rank-1 (the rules do not change it)."""
    eligible = sorted(name for name, rows in people.items() if len(rows) > enroll)
    biggest = max(sizes) if sizes else 0
    if biggest > len(eligible):
        raise DatasetError(f"a gallery of {biggest} people needs {biggest} people with more than {enroll} image(s); "
                           f"the dataset has {len(eligible)}")
    rules = rules_to_compare(recognizer)
    model_id = getattr(recognizer.embedder, "model_id", None)
    table = []
    for size in sizes:
        repeats = draws if 2 * size <= len(eligible) else 1
        figures: dict[str, list[dict[str, Any]]] = {rule.label: [] for rule in rules}
        rank1, counts = [], []
        for draw in range(repeats):
            chosen = set(np.random.default_rng([seed, size, draw]).choice(eligible, size, replace=False).tolist())
            gallery_rows = [r for name in sorted(chosen) for r in people[name][:enroll]]
            gallery_labels = [name for name in sorted(chosen) for _ in people[name][:enroll]]
            probe_rows, probe_labels, known = [], [], []
            for name, rows in people.items():
                mine = list(rows[enroll:]) if name in chosen else list(rows)
                probe_rows += mine
                probe_labels += [name] * len(mine)
                known += [name in chosen] * len(mine)
            gallery = split_gallery(embeddings, np.array(gallery_rows), np.array(gallery_labels), model_id)
            probes = embeddings[np.array(probe_rows)]
            labels, known_mask = np.array(probe_labels), np.array(known, bool)
            scores = recognizer.matcher_for(gallery, rules[-1]).person_scores(probes[known_mask])
            rank1.append(float(np.mean(np.array(gallery.names)[scores.argmax(axis=1)] == labels[known_mask])))
            counts.append((len(gallery_rows), int(known_mask.sum()), int((~known_mask).sum())))
            for rule in rules:
                figures[rule.label].append(decision_point(recognizer, gallery, probes, labels, known_mask, rule))
        templates, known_probes, stranger_probes = (round(float(np.mean(c))) for c in zip(*counts))
        table.append({
            "people": size, "draws": repeats, "templates": templates, "known_probes": known_probes,
            "stranger_probes": stranger_probes, "rank1": float(np.mean(rank1)),
            "rules": {label: _mean_point(points) for label, points in figures.items()},
        })
        logger.info("gallery of %d people: done", size)
    return table


def _mean_point(points: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"rule": points[0]["rule"], "target": points[0]["target"]}
    for key in ("gallery_threshold", "expected_false_alarms", "dir", "false_alarm_rate", "precision", "recall", "f1"):
        values = [p[key] for p in points if p[key] is not None]
        out[key] = float(np.mean(values)) if values else None
    return out


def format_size_table(table: list[dict[str, Any]], app_rule: str) -> list[str]:
    """Lines of text: one row per gallery size and rule."""
    lines = ["by gallery size (strangers: everyone not enrolled; DIR: known people's photos named rightly):",
             f"  {'people':>6}  {'rule':<14} {'target':>7} {'threshold':>9} {'strangers named':>15} {'DIR':>7} {'rank-1':>7}"]
    for row in table:
        for label, point in row["rules"].items():
            target = "-" if point["target"] is None else f"{point['target']:.1%}"
            mark = " (app)" if label == app_rule else ""
            lines.append(f"  {row['people']:>6}  {label + mark:<14} {target:>7} {point['gallery_threshold']:>9.3f} "
                         f"{point['false_alarm_rate']:>15.2%} {point['dir']:>7.2%} {row['rank1']:>7.2%}")
    return lines
