"""The run report of ``faceapp train``: ``MODEL_DIR/report.png`` and ``MODEL_DIR/report.json``.

Written after every plain run (:func:`faceapp.training.run.train_and_export` and the
``--from-shards`` path) from what :func:`faceapp.training.loop.train` returned and the
validation people's faces (:class:`~faceapp.training.data.FaceSet`: BGR uint8
``(N, 112, 112, 3)`` aligned crops, int32 labels ``(N,)``), which are in memory.
"Before" is the starting network (``TrainResult.before_embeddings``, unit float32
``(N, 128)``, kept by the loop when it measured epoch 0), "after" the best epoch's
(``TrainResult.backbone``, which carries those weights; its embeddings are computed
here with :func:`faceapp.training.validation.embed_faces`, the path the per-epoch
validation uses). The embeddings are L2-normalised, so a dot product is the cosine.

Figures, before and after:

* verification on the run's fixed validation pairs (the very scores the loop measured:
  ``TrainResult.before`` and ``.best``): k-fold accuracy, ROC AUC, EER and TAR at
  FAR 1e-3 (:mod:`faceapp.evaluation.metrics`);
* identification on the validation people. Closed set: every validation person with
  at least 2 images enrolls one image (the first in file-name order), the rest are
  probes; rank-1 and rank-5 (a probe's score for a person is the best of that
  person's templates). Open set, by *held-out people*: the validation people are dealt
  (seeded) into ``min(5, people)`` groups; each group in turn is the strangers (all
  their images are unknown probes) while the others enroll as above; the DIR at a
  false alarm rate of 1% is the mean over the groups
  (:func:`faceapp.evaluation.ident.make_split` / :func:`~faceapp.evaluation.ident.evaluate_split`).
  With fewer than 2 validation people the open-set figure is ``null``.

``report.json`` holds no top-level ``model_id`` (so :func:`~faceapp.training.export.export_model`
never takes it for another model's card on a rerun into the folder). matplotlib is
imported only when plotting, through its Agg canvas (no GUI backend).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from faceapp.files import write_json
from faceapp.training.data import FaceSet
from faceapp.training.validation import MONITOR, Verification, embed_faces

logger = logging.getLogger(__name__)

REPORT_JSON = "report.json"
REPORT_PNG = "report.png"
VERIFY_FAR = 1e-3
IDENT_FAR = 1e-2
OPEN_SET_FOLDS = 5
RANKS = (1, 5)


def _number(value: float | None, digits: int = 6) -> float | None:
    return round(float(value), digits) if value is not None and math.isfinite(float(value)) else None


# --------------------------------------------------------------------------- verification
def verification_figures(verification: Verification) -> dict[str, Any]:
    """Accuracy (k-fold), AUC, EER and TAR at FAR :data:`VERIFY_FAR` of a set of pair scores."""
    from faceapp.evaluation.metrics import equal_error_rate, tar_at_far

    scores, same = np.asarray(verification.scores, np.float64), np.asarray(verification.same, bool)
    eer = tar = None
    if same.any() and (~same).any():
        eer = equal_error_rate(scores, same)[0]
        if np.count_nonzero(~same) * VERIFY_FAR >= 1:  # else FAR 1e-3 is FAR 0: not worth a number
            tar = tar_at_far(scores, same, VERIFY_FAR)[0]
    return {"accuracy": _number(verification.accuracy), "auc": _number(verification.auc), "eer": _number(eer),
            f"tar_at_far_{VERIFY_FAR:g}": _number(tar), "threshold": _number(verification.threshold)}


# --------------------------------------------------------------------------- identification
def _people(faces: FaceSet) -> dict[str, list[int]]:
    """Person name -> row indices, each person's rows in file-name order (the enrolment order)."""
    people: dict[str, list[int]] = {name: [] for name in faces.names}
    for row in sorted(range(len(faces)), key=lambda i: (faces.paths[i], i)):
        people[faces.names[int(faces.labels[row])]].append(row)
    return {name: rows for name, rows in people.items() if rows}


def closed_set_split(people: dict[str, list[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(gallery rows, gallery names, probe rows, probe names)``: each person with >= 2
    images enrolls their first image, the rest are probes (``eval ident``'s split with one
    image enrolled and no strangers)."""
    from faceapp.evaluation.ident import make_split

    split = make_split(people, 1, set())
    return split.gallery, split.gallery_labels.astype(str), split.probes, split.probe_labels.astype(str)


def rank_k_rates(similarity: np.ndarray, probe_names: np.ndarray, gallery_names: np.ndarray, ranks=RANKS) -> dict[int, float]:
    """Closed-set rank-k rates: the fraction of probes whose own person is among the ``k``
    best-scoring people (a person's score: the best of their templates), every k by the
    same rule: a probe counts at rank k when fewer than k people score strictly above its
    own (a tie counts for the probe), so rank 1 <= rank 5 always holds."""
    identities, inverse = np.unique(gallery_names, return_inverse=True)
    per_person = np.full((len(probe_names), len(identities)), -np.inf)
    np.maximum.at(per_person.T, inverse, similarity.T)
    own = per_person[np.arange(len(probe_names)), np.searchsorted(identities, probe_names)]
    better = np.count_nonzero(per_person > own[:, None], axis=1)  # people ranked above the own one
    return {k: float(np.mean(better < k)) for k in ranks}


def identification(embeddings: np.ndarray, faces: FaceSet, *, seed: int = 0, threshold: float = 0.5) -> dict[str, Any]:
    """Identification figures of the validation people (see the module docstring) given
    unit float32 ``(N, 128)`` ``embeddings`` of ``faces``' rows. ``threshold`` only feeds
    :func:`~faceapp.evaluation.ident.evaluate_split`'s fixed-threshold figures, not reported."""
    from faceapp.evaluation.ident import IdentConfig, evaluate_split, make_split, stranger_groups
    from faceapp.evaluation.images import DatasetError

    people = _people(faces)
    gallery, gallery_names, probes, probe_names = closed_set_split(people)
    out: dict[str, Any] = {f"rank{k}": None for k in RANKS}
    if len(gallery) and len(probes):
        similarity = embeddings[probes] @ embeddings[gallery].T  # (P, G)
        out.update({f"rank{k}": _number(rate) for k, rate in rank_k_rates(similarity, probe_names, gallery_names).items()})
    dirs = []
    names = list(people)
    if len(names) >= 2:
        for strangers in stranger_groups(names, IdentConfig(enroll=1, folds=min(OPEN_SET_FOLDS, len(names)), seed=seed)):
            try:
                result = evaluate_split(embeddings, make_split(people, 1, strangers), threshold)
            except DatasetError:  # this group left no known (or no stranger) probe
                continue
            dirs.append(result.dir_at_far[IDENT_FAR][0])
    out[f"dir_at_far_{IDENT_FAR:g}"] = _number(float(np.mean(dirs))) if dirs else None
    out["open_set_groups"] = len(dirs)
    return out


def identification_counts(faces: FaceSet) -> dict[str, int]:
    """People, images, enrolled people (>= 2 images) and closed-set probes of the validation set."""
    people = _people(faces)
    gallery, _, probes, _ = closed_set_split(people)
    return {"people": len(people), "images": len(faces), "enrolled_people": len(gallery), "probes": len(probes)}


# --------------------------------------------------------------------------- the report
def build_report(result: Any, val_faces: FaceSet, *, seed: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(report, curves)``: the JSON-ready figures of a :class:`~faceapp.training.loop.TrainResult`
    and the ROC curves to plot (``{"before"|"after": RocCurve}``)."""
    from faceapp.evaluation.metrics import roc

    after_embeddings = embed_faces(result.backbone, val_faces.images)
    before_embeddings = result.before_embeddings
    if before_embeddings is not None and len(before_embeddings) != len(val_faces):
        raise ValueError(f"{len(before_embeddings)} starting embeddings for {len(val_faces)} validation faces")
    same = np.asarray(result.best.same, bool)
    history = result.history
    report = {
        "best_epoch": int(result.best_epoch),
        "epochs_run": len(history.get("loss", [])),
        "history": {key: [_number(v) for v in history.get(key, [])]
                    for key in ("loss", "accuracy", "val_verification_accuracy", MONITOR)},
        "verification": {"before": verification_figures(result.before), "after": verification_figures(result.best)},
        "identification": {
            "before": None if before_embeddings is None
            else identification(before_embeddings, val_faces, seed=seed, threshold=result.before.threshold),
            "after": identification(after_embeddings, val_faces, seed=seed, threshold=result.best.threshold),
            "protocol": "closed set: one image enrolled per person with >= 2 images, the rest probes (rank-1, rank-5); "
                        f"open set: held-out people, min({OPEN_SET_FOLDS}, people) seeded groups each the strangers once, "
                        f"DIR at FAR {IDENT_FAR:g} averaged over the groups",
        },
        "counts": {**identification_counts(val_faces), "pairs": len(same), "genuine_pairs": int(same.sum()),
                   "impostor_pairs": int((~same).sum())},
    }
    curves = {}
    for name, verification in (("before", result.before), ("after", result.best)):
        labels = np.asarray(verification.same, bool)
        if labels.any() and (~labels).any():
            curves[name] = roc(verification.scores, labels)
    return report, curves


def plot_report(report: dict[str, Any], curves: dict[str, Any], path: Path) -> Path:
    """The four panels as one PNG: head loss per epoch; validation accuracy and AUC per
    epoch (0 = before); the ROC of the validation pairs before and after (FAR on a log
    scale); identification rank-1, rank-5 and DIR at FAR 1% before and after."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(11.0, 8.0), dpi=100)
    FigureCanvasAgg(figure)
    (loss_axis, val_axis), (roc_axis, ident_axis) = figure.subplots(2, 2)
    history, verification = report["history"], report["verification"]
    epochs = np.arange(1, len(history["loss"]) + 1)
    loss_axis.plot(epochs, [np.nan if v is None else v for v in history["loss"]], marker="o")
    loss_axis.set_title("head loss (train)")
    loss_axis.set_xlabel("epoch")
    all_epochs = np.concatenate([[0], epochs])
    for key, label in (("val_verification_accuracy", "accuracy"), (MONITOR, "AUC")):
        start = verification["before"]["accuracy" if label == "accuracy" else "auc"]
        values = [start] + list(history[key])
        if len(values) == len(all_epochs):
            val_axis.plot(all_epochs, [np.nan if v is None else v for v in values], marker="o", label=label)
    if report["best_epoch"]:
        val_axis.axvline(report["best_epoch"], color="grey", linestyle="--", label=f"best epoch {report['best_epoch']}")
    val_axis.set_title("validation verification")
    val_axis.set_xlabel("epoch")
    val_axis.legend(loc="lower right")
    for name, curve in curves.items():
        keep = curve.far > 0
        roc_axis.plot(curve.far[keep], curve.tar[keep], label=f"{name} (AUC = {curve.auc:.4f})")
    roc_axis.set_xscale("log")
    roc_axis.set_ylim(0.0, 1.01)
    roc_axis.set_xlabel("false accept rate")
    roc_axis.set_ylabel("true accept rate")
    roc_axis.set_title(f"ROC, {report['counts']['pairs']} validation pairs")
    if curves:
        roc_axis.legend(loc="lower right")
    keys = [f"rank{k}" for k in RANKS] + [f"dir_at_far_{IDENT_FAR:g}"]
    labels = [f"rank-{k}" for k in RANKS] + [f"DIR @ FAR {IDENT_FAR:.0%}"]
    x = np.arange(len(keys))
    for offset, name in ((-0.2, "before"), (0.2, "after")):
        figures = report["identification"][name] or {}
        values = [np.nan if figures.get(key) is None else figures[key] for key in keys]
        bars = ident_axis.bar(x + offset, np.nan_to_num(values), width=0.4, label=name)  # n/a: a zero-height bar
        ident_axis.bar_label(bars, labels=["n/a" if np.isnan(v) else f"{v:.3f}" for v in values], fontsize=8)
    ident_axis.set_xticks(x, labels)
    ident_axis.set_ylim(0.0, 1.2)
    counts = report["counts"]
    ident_axis.set_title(f"identification: {counts['enrolled_people']} enrolled, {counts['probes']} probes")
    ident_axis.legend(loc="upper center", ncol=2)
    for axis in (loss_axis, val_axis):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    for axis in (loss_axis, val_axis, roc_axis, ident_axis):
        axis.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def write_report(result: Any, val_faces: FaceSet, out_dir: str | os.PathLike, *, seed: int = 0) -> dict[str, str]:
    """Write ``report.png`` and ``report.json`` into ``out_dir`` (the model folder);
    returns their paths as ``{"report_plot": ..., "report": ...}`` for the run's outputs.
    ``seed`` deals the open-set groups (the run's split seed)."""
    out = Path(out_dir)
    report, curves = build_report(result, val_faces, seed=seed)
    plot = plot_report(report, curves, out / REPORT_PNG)
    write_json(out / REPORT_JSON, report, what="run report")
    after = report["identification"]["after"]
    logger.info("run report written to %s (after: AUC %s, rank-1 %s, DIR@%g %s)", out / REPORT_JSON,
                report["verification"]["after"]["auc"], after["rank1"], IDENT_FAR, after[f"dir_at_far_{IDENT_FAR:g}"])
    return {"report_plot": str(plot), "report": str(out / REPORT_JSON)}
