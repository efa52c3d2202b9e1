"""``faceapp eval ident``: open-set identification on a dataset of people.

The dataset is either one folder per person (``DATA_DIR/NAME/*.jpg``) or one flat
folder of ``NAME_NNNN.jpg`` files (LFW's layout; ``DATA_DIR/images/`` is used when it
exists), grouped by the name before the trailing number.

A *split* chooses some people as *strangers* (never enrolled: every image of theirs is
an unknown probe); every other person with at least ``K + 1`` images is *known*: the
first ``K`` images (in file-name order, among those with a usable face) are enrolled as
their templates and the rest are known probes. The others (fewer images, not strangers) are left out and counted.
A probe's score for a person is the best of that person's template similarities, as in
the app's :class:`~faceapp.recognition.matching.Matcher`.

Reported per split: closed-set rank-1 accuracy (known probes only), open-set
detection-and-identification rate (DIR) at false alarm rates 1% and 0.1%; at the app's
*actual decision* (its decision rule, calibrated for each split's gallery, through the
same Matcher as the live loop: :mod:`faceapp.evaluation.app_decision`) and at each
preset, the DIR, the false alarm rate and precision, recall and F1 of "named"; and, for
comparison, the same at the fixed threshold the app used before (``at_fixed``). With
``folds``, people are dealt into that many groups and each group is the strangers once;
the report gives each fold and the mean and standard deviation. With ``gallery_sizes``,
also a table for galleries of those many people drawn from the dataset.
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faceapp.evaluation.app_decision import decision_point, format_size_table, gallery_size_table, rules_to_compare, split_gallery
from faceapp.evaluation.images import DatasetError, embed_images
from faceapp.evaluation.open_set import known_unknown_prf, open_set_dir_at_far, rank1_accuracy
from faceapp.evaluation.report import write_report
from faceapp.media.imageio import IMAGE_SUFFIXES
from faceapp.vision.faces import FacePolicy

logger = logging.getLogger(__name__)

__all__ = [
    "IdentConfig",
    "IdentResult",
    "Split",
    "discover_people",
    "evaluate_split",
    "format_ident_table",
    "make_split",
    "operating_point",
    "run_ident",
    "stranger_groups",
]

FAR_TARGETS = (1e-2, 1e-3)
_NUMBERED = re.compile(r"^(?P<name>.+?)[_\- ]?(?P<number>\d+)$")


@dataclass(frozen=True)
class IdentConfig:
    """How the people are split.

    Attributes:
        enroll: K, images enrolled per known person (the first K in file-name order).
        strangers: the people never enrolled: a fraction of all people if < 1, else a
            count. Ignored when ``folds`` is set.
        folds: if set (>= 2), k-fold cross-validation: each of ``folds`` groups of
            people is the strangers once.
        seed: seeds the random choice of strangers (the same seed, the same split).
    """

    enroll: int = 2
    strangers: float = 0.2
    folds: int | None = None
    seed: int = 0

    def validate(self) -> None:
        if self.enroll < 1:
            raise ValueError(f"enroll (K) must be >= 1, got {self.enroll}")
        if not (math.isfinite(self.strangers) and self.strangers > 0):
            raise ValueError(f"strangers must be a fraction in (0, 1) or a count >= 1, got {self.strangers}")
        if self.strangers >= 1 and self.strangers != int(self.strangers):
            raise ValueError(f"a count of strangers must be a whole number, got {self.strangers}")
        if self.folds is not None and self.folds < 2:
            raise ValueError(f"folds must be >= 2, got {self.folds}")


# --------------------------------------------------------------------------- the dataset
def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def person_of(path: Path) -> str:
    """The person of a flat-layout file: ``George_W_Bush_0012.jpg`` -> ``George_W_Bush``
    (the stem without its trailing number; the whole stem if it has none)."""
    match = _NUMBERED.match(path.stem)
    return match.group("name") if match else path.stem


def discover_people(root: str | os.PathLike) -> dict[str, list[Path]]:
    """People and their images (sorted by file name), people sorted by name.

    Layouts: ``root/images/NAME_NNNN.jpg`` (LFW), ``root/NAME/*.jpg`` (one folder per
    person), or ``root/NAME_NNNN.jpg`` (flat). Raises DatasetError when nothing is found.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder (give the dataset's folder)" if root.exists() else f"dataset folder not found: {root}")
    lfw_images = root / "images"
    flat_folder = lfw_images if lfw_images.is_dir() and _images_in(lfw_images) else root
    people: dict[str, list[Path]] = {}
    if flat_folder is root:
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            images = _images_in(folder)
            if images:
                people[folder.name] = images
    if people:
        loose = _images_in(root)
        if loose:
            logger.warning("%s: %d image(s) outside the person folders are ignored", root, len(loose))
    else:
        for path in _images_in(flat_folder):
            people.setdefault(person_of(path), []).append(path)
    if not people:
        raise DatasetError(f"no images found in {root} (expected NAME/*.jpg folders or NAME_NNNN.jpg files)")
    return dict(sorted((name, sorted(paths)) for name, paths in people.items()))


# --------------------------------------------------------------------------- the split
@dataclass(frozen=True)
class Split:
    """Who is enrolled and who probes, as indices into a list of images.

    Attributes:
        gallery: int ``(G,)`` image indices of the templates; ``gallery_labels`` str
            ``(G,)`` their person.
        probes: int ``(P,)`` image indices; ``probe_labels`` str ``(P,)`` their person;
            ``probe_known`` bool ``(P,)`` whether that person is enrolled.
        known_people, stranger_people, unused_people: how many of each.
    """

    gallery: np.ndarray
    gallery_labels: np.ndarray
    probes: np.ndarray
    probe_labels: np.ndarray
    probe_known: np.ndarray
    known_people: int
    stranger_people: int
    unused_people: int


def stranger_groups(names: list[str], config: IdentConfig) -> list[set[str]]:
    """The strangers of each split: one set, or ``config.folds`` disjoint sets covering
    everyone. Deterministic for a given ``config.seed``."""
    config.validate()
    rng = np.random.default_rng(config.seed)
    order = [names[i] for i in rng.permutation(len(names))]
    if config.folds is not None:
        if config.folds > len(names):
            raise DatasetError(f"{config.folds} folds need at least as many people; the dataset has {len(names)}")
        return [set(order[fold :: config.folds]) for fold in range(config.folds)]
    count = round(config.strangers * len(names)) if config.strangers < 1 else int(config.strangers)
    if not 1 <= count < len(names):
        raise DatasetError(f"{count} strangers out of {len(names)} people leaves no room for both known people and strangers")
    return [set(order[:count])]


def make_split(people: dict[str, list[int]], enroll: int, strangers: set[str]) -> Split:
    """Split ``people`` (name -> image indices, in enrolment order) given the strangers.

    Strangers with no image, and people with ``enroll`` images or fewer who are not
    strangers, are counted as unused."""
    gallery, gallery_labels, probes, probe_labels, probe_known = [], [], [], [], []
    known = unused = 0
    for name, images in people.items():
        if name in strangers and images:
            probes += images
            probe_labels += [name] * len(images)
            probe_known += [False] * len(images)
        elif len(images) > enroll:
            known += 1
            gallery += images[:enroll]
            gallery_labels += [name] * enroll
            probes += images[enroll:]
            probe_labels += [name] * (len(images) - enroll)
            probe_known += [True] * (len(images) - enroll)
        else:
            unused += 1
    return Split(
        gallery=np.array(gallery, np.int64),
        gallery_labels=np.array(gallery_labels, dtype=object),
        probes=np.array(probes, np.int64),
        probe_labels=np.array(probe_labels, dtype=object),
        probe_known=np.array(probe_known, bool),
        known_people=known,
        stranger_people=sum(1 for name, images in people.items() if name in strangers and images),
        unused_people=unused,
    )


# --------------------------------------------------------------------------- the figures
@dataclass(frozen=True)
class IdentResult:
    """Identification figures of one split (rates in ``[0, 1]``).

    ``dir_at_far``: ``{far: (dir, threshold)}``. At the app's ``threshold``: ``precision``,
    ``recall``, ``f1`` of "known" (best score >= threshold), ``dir_at_threshold`` (known
    probes named correctly) and ``false_alarm_rate`` (strangers given a name).
    ``at_presets``: the same five figures and the threshold at each named preset.
    """

    rank1: float
    dir_at_far: dict[float, tuple[float, float]]
    threshold: float
    precision: float
    recall: float
    f1: float
    dir_at_threshold: float
    false_alarm_rate: float
    known_probes: int
    unknown_probes: int
    templates: int
    at_presets: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        def number(value: float) -> float | None:
            return round(float(value), 6) if math.isfinite(value) else None

        return {
            "rank1": number(self.rank1),
            "dir_at_far": {f"{far:g}": {"dir": number(rate), "threshold": number(t)} for far, (rate, t) in self.dir_at_far.items()},
            "threshold": number(self.threshold),
            "precision": number(self.precision),
            "recall": number(self.recall),
            "f1": number(self.f1),
            "dir_at_threshold": number(self.dir_at_threshold),
            "false_alarm_rate": number(self.false_alarm_rate),
            "known_probes": self.known_probes,
            "unknown_probes": self.unknown_probes,
            "templates": self.templates,
            "at_presets": {name: {key: number(value) for key, value in point.items()} for name, point in self.at_presets.items()},
        }


def operating_point(best_score: np.ndarray, best_person: np.ndarray, labels: np.ndarray, known: np.ndarray, threshold: float) -> dict[str, float]:
    """The open-set decision at ``threshold``: a probe is named ``best_person`` when
    ``best_score >= threshold``, else "unknown". All arrays ``(P,)``; ``known`` bool.

    Returns ``threshold``, ``precision``/``recall``/``f1`` of "known", ``dir`` (known
    probes named correctly) and ``false_alarm_rate`` (strangers named)."""
    prf = known_unknown_prf(best_score, known, threshold)
    accepted = best_score >= threshold
    return {
        "threshold": float(threshold),
        "precision": prf.precision,
        "recall": prf.recall,
        "f1": prf.f1,
        "dir": float(np.mean(accepted[known] & (best_person[known] == labels[known]))),
        "false_alarm_rate": float(np.mean(accepted[~known])),
    }


def evaluate_split(embeddings: np.ndarray, split: Split, threshold: float, presets: dict[str, float] | None = None) -> IdentResult:
    """Figures of ``split`` given float32 ``(N, D)`` unit ``embeddings`` of all images,
    at the app's ``threshold`` and at each of ``presets`` (name -> threshold)."""
    known = split.probe_known
    if not known.any() or known.all() or len(split.gallery) == 0:
        raise DatasetError(
            "the split needs known probes and stranger probes: "
            f"{int(known.sum())} known and {int((~known).sum())} stranger probe(s), {len(split.gallery)} template(s)"
        )
    similarity = embeddings[split.probes] @ embeddings[split.gallery].T  # (P, G)
    identities, inverse = np.unique(split.gallery_labels.astype(str), return_inverse=True)
    per_person = np.full((len(split.probes), len(identities)), -np.inf)
    np.maximum.at(per_person.T, inverse, similarity.T)  # best template of each person
    best_person = identities[per_person.argmax(axis=1)]
    best_score = per_person.max(axis=1)
    labels = split.probe_labels.astype(str)
    gallery_labels = split.gallery_labels.astype(str)
    point = operating_point(best_score, best_person, labels, known, threshold)
    return IdentResult(
        rank1=rank1_accuracy(similarity[known], labels[known], gallery_labels),
        dir_at_far={far: open_set_dir_at_far(similarity, labels, gallery_labels, known, far) for far in FAR_TARGETS},
        threshold=float(threshold),
        precision=point["precision"],
        recall=point["recall"],
        f1=point["f1"],
        dir_at_threshold=point["dir"],
        false_alarm_rate=point["false_alarm_rate"],
        known_probes=int(known.sum()),
        unknown_probes=int((~known).sum()),
        templates=len(split.gallery),
        at_presets={name: operating_point(best_score, best_person, labels, known, value) for name, value in (presets or {}).items()},
    )


def _stats(values: list[float]) -> dict[str, float]:
    array = np.array(values, float)
    return {"mean": round(float(array.mean()), 6), "std": round(float(array.std()), 6)}


def _rounded(point: dict[str, Any]) -> dict[str, Any]:
    return {key: round(float(v), 6) if isinstance(v, float) and math.isfinite(v) else v for key, v in point.items()}


_DECISION_KEYS = ("dir", "false_alarm_rate", "precision", "recall", "f1", "gallery_threshold")
_FIXED_KEYS = ("precision", "recall", "f1", "dir_at_threshold", "false_alarm_rate")
_SPLIT_KEYS = ("rank1", "dir_at_far", "known_probes", "unknown_probes", "templates")


def _mean_decision(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and standard deviation (ddof=0) over folds of a decision's figures."""
    out: dict[str, Any] = {"rule": points[0]["rule"], "target": points[0]["target"]}
    out.update({key: _stats([p[key] for p in points]) for key in _DECISION_KEYS})
    return out


def _summary(results: list[IdentResult]) -> dict[str, Any]:
    """Mean and standard deviation (ddof=0) over folds of the threshold-free rates and
    of the figures at the fixed threshold (``at_fixed``)."""
    summary: dict[str, Any] = {"rank1": _stats([r.rank1 for r in results])}
    for far in FAR_TARGETS:
        summary[f"dir_at_far_{far:g}"] = _stats([r.dir_at_far[far][0] for r in results])
    rows = [r.to_json() for r in results]
    summary["at_fixed"] = {"threshold": rows[0]["threshold"], **{key: _stats([row[key] for row in rows]) for key in _FIXED_KEYS}}
    return summary


# --------------------------------------------------------------------------- the command
def run_ident(
    recognizer: Any,
    data_dir: str | os.PathLike,
    config: IdentConfig | None = None,
    *,
    policy: FacePolicy | None = None,
    flip: bool = False,
    out_dir: str | os.PathLike | None = "eval-ident",
    batch_size: int = 64,
    progress: bool = False,
    people: dict[str, list[Path]] | None = None,
    gallery_sizes: tuple[int, ...] = (),
) -> dict[str, Any]:
    """Run the identification evaluation and return the report (a JSON-ready dict);
    with ``out_dir``, also write ``report.json`` there. ``flip`` uses flip-fused
    embeddings. The app's decision is ``recognizer.decision``. ``people``: the result of
    ``discover_people(data_dir)`` if already known. ``gallery_sizes``: also measure
    galleries of these many people (every image is embedded then)."""
    config = config or IdentConfig()
    policy = policy or FacePolicy(no_face="skip")
    try:
        config.validate()
        policy.validate()
    except ValueError as error:
        raise DatasetError(str(error)) from None
    if policy.no_face == "reject":
        raise DatasetError("identification cannot 'reject' images: use the 'centre' or 'skip' no-face policy")
    people = people if people is not None else discover_people(data_dir)
    eligible = sum(1 for images in people.values() if len(images) > config.enroll)
    if gallery_sizes and max(gallery_sizes) > eligible:  # known before anything is embedded
        raise DatasetError(f"a gallery of {max(gallery_sizes)} people needs {max(gallery_sizes)} people with more than "
                           f"{config.enroll} image(s); the dataset has {eligible}")
    names = list(people)
    groups = stranger_groups(names, config)
    # Embed only the images some split uses.
    used = {name for name, images in people.items()
            if gallery_sizes or len(images) > config.enroll or any(name in g for g in groups)}
    paths = [path for name in names if name in used for path in people[name]]
    embeddings = embed_images(recognizer, paths, policy, flip=flip, batch_size=batch_size, progress=progress, description="images")
    matrix = embeddings.flip if flip else embeddings.plain
    row_of = {path: row for row, path in enumerate(paths)}
    # People as lists of usable rows (empty for people no split uses or without a face).
    usable_people = {
        name: [row_of[p] for p in people[name] if embeddings.usable[row_of[p]]] if name in used else [] for name in names
    }
    card = recognizer.card
    fixed = card.threshold_presets[card.default_preset]  # the app's fixed threshold before the calibrated decision
    rules = rules_to_compare(recognizer)
    splits, results, decided = [], [], []
    for strangers in groups:
        split = make_split(usable_people, config.enroll, strangers)
        splits.append(split)
        results.append(evaluate_split(matrix, split, fixed, card.threshold_presets))
        gallery = split_gallery(matrix, split.gallery, split.gallery_labels, recognizer.embedder.model_id)
        decided.append({rule.label: decision_point(recognizer, gallery, matrix[split.probes], split.probe_labels,
                                                   split.probe_known, rule) for rule in rules})
    app = recognizer.decision.label
    no_face = embeddings.no_face()
    report: dict[str, Any] = {
        "protocol": (
            f"open-set identification: the first {config.enroll} image(s) of each known person enrolled, "
            "the rest probe; strangers never enrolled"
        ),
        "dataset": {"directory": str(data_dir), "people": len(names), "images": sum(len(v) for v in people.values())},
        "config": {"enroll": config.enroll, "strangers": config.strangers, "folds": config.folds, "seed": config.seed},
        "model": {"model_id": recognizer.embedder.model_id, "device": recognizer.embedder.device_name, "flip": flip},
        "face_policy": policy.to_json(),
        "faces": {
            "images": len(paths),
            "detected": int(embeddings.detected.sum()),
            "no_face": len(no_face),
            "no_face_policy": policy.no_face,
            "no_face_images": [str(p) for p in no_face],
            "multiple_faces": embeddings.multiple,
        },
        "splits": [
            {
                "known_people": s.known_people,
                "stranger_people": s.stranger_people,
                "unused_people": s.unused_people,
                **{key: value for key, value in r.to_json().items() if key in _SPLIT_KEYS},
                "app_decision": _rounded(d[app]),
                "decisions": {label: _rounded(point) for label, point in d.items()},
                "at_fixed": {key: value for key, value in r.to_json().items() if key in ("threshold", *_FIXED_KEYS)},
            }
            for s, r, d in zip(splits, results, decided)
        ],
        "summary": {**_summary(results), "app_decision": _mean_decision([d[app] for d in decided]),
                    "decisions": {label: _mean_decision([d[label] for d in decided]) for label in decided[0]}},
        "seconds": round(embeddings.seconds, 1),
    }
    if gallery_sizes:
        report["gallery_sizes"] = [
            {**row, "rank1": round(row["rank1"], 6), "rules": {k: _rounded(v) for k, v in row["rules"].items()}}
            for row in gallery_size_table(recognizer, matrix, usable_people, gallery_sizes, enroll=config.enroll, seed=config.seed)
        ]
    if out_dir is not None:
        out = Path(out_dir)
        try:
            out.mkdir(parents=True, exist_ok=True)
            report["outputs"] = {"report": str(out / "report.json")}
            write_report(out / "report.json", report)
        except OSError as error:
            raise DatasetError(f"cannot write the report to {out}: {error.strerror or error}") from None
    return report


def format_ident_table(report: dict[str, Any]) -> str:
    """A short human-readable table of an identification report."""
    faces, summary = report["faces"], report["summary"]
    split = report["splits"][0]
    folds = len(report["splits"])
    scope = f"{folds} folds" if folds > 1 else "split"
    first = " (first fold)" if folds > 1 else ""
    lines = [
        (
            f"identification: {report['dataset']['people']} people, {faces['images']} images used, "
            f"{faces['no_face']} without a detected face ({faces['no_face_policy']}), {report['seconds']:.0f} s"
        ),
        (
            f"{scope}: {split['known_people']} known people ({split['templates']} templates, "
            f"{split['known_probes']} probes), {split['stranger_people']} strangers ({split['unknown_probes']} probes), "
            f"{split['unused_people']} unused{first}"
        ),
    ]

    def cell(value: dict[str, float]) -> str:
        return f"{100 * value['mean']:7.2f}%" + (f"  ± {100 * value['std']:.2f}" if folds > 1 else "")

    for label, key in (("rank-1 accuracy (closed set)", "rank1"), ("DIR at false alarm rate 1%", "dir_at_far_0.01"),
                       ("DIR at false alarm rate 0.1%", "dir_at_far_0.001")):
        lines.append(f"  {label:<40} {cell(summary[key])}")
    app = summary["app_decision"]
    target = f", target {app['target']:.1%} of strangers" if app["target"] is not None else ""
    lines.append(f"  at the app's decision ({app['rule']}{target}; gallery threshold {app['gallery_threshold']['mean']:.3f}):")
    for label, key in (("strangers named (false alarm rate)", "false_alarm_rate"), ("known named rightly (DIR)", "dir"),
                       ("known precision", "precision"), ("known recall", "recall"), ("known F1", "f1")):
        lines.append(f"    {label:<38} {cell(app[key])}")
    for label, point in summary["decisions"].items():
        lines.append(f"  {label:<14} (threshold {point['gallery_threshold']['mean']:.3f}): strangers named "
                     f"{100 * point['false_alarm_rate']['mean']:.2f}%, DIR {100 * point['dir']['mean']:.2f}%, "
                     f"known F1 {100 * point['f1']['mean']:.2f}%")
    if "gallery_sizes" in report:
        lines += format_size_table(report["gallery_sizes"], app["rule"])
    if "outputs" in report:
        lines.append(f"report: {report['outputs']['report']}")
    return "\n".join(lines)
