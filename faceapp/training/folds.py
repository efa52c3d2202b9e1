"""K-fold cross-validation by person (``faceapp train --folds K``).

The people are split into K disjoint groups; run ``k`` trains on the other K-1 groups
and measures verification on the pairs of group ``k``'s people. The report gives each
fold's accuracy and AUC before and after training, and their mean and (population)
standard deviation. No model is exported: cross-validation estimates how well a
configuration generalises; train once more without ``--folds`` to get the model.

Resuming (``--resume``): each finished fold's row is written at once to
``OUT/folds/fold-K.json`` (atomically) with a fingerprint of what it depends on (the
training options, the seed, the fold count and the fold's people); each fold trains with
per-epoch checkpoints in ``OUT/folds/fold-K/`` (:mod:`faceapp.training.checkpoints`,
removed once the fold's row is written). A resumed run keeps the rows whose fingerprint
matches, refuses (:class:`~faceapp.training.checkpoints.CheckpointError`, one line) rows
made with other settings or another split, continues the interrupted fold from its last
checkpoint and trains the missing ones; ``crossval.json`` is then written from all the
rows, as an uninterrupted run writes it. Without ``--resume`` earlier rows are removed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from faceapp.files import write_json
from faceapp.training.checkpoints import CheckpointError
from faceapp.training.config import TrainConfig, changed_settings
from faceapp.training.data import LoadedFaces, kfold_people

logger = logging.getLogger(__name__)


FOLDS_DIR = "folds"


def fold_settings(config: TrainConfig, folds: int, seed: int, train_names, val_names) -> dict[str, Any]:
    """What one fold's result depends on (``verbose`` aside); the people as digests."""
    def digest(names) -> str:
        return hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()[:16]

    options = {k: v for k, v in config.to_json().items() if k != "verbose"}
    return json.loads(json.dumps({"config": options, "folds": int(folds), "seed": int(seed),
                                  "train_people": digest(train_names), "val_people": digest(val_names)}, default=str))


def fingerprint(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _finished_fold(path: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The row in ``path`` (None when absent); CheckpointError if it belongs to another run."""
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        row, saved_settings = saved["row"], saved["settings"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"cannot resume from {path}: unreadable ({type(error).__name__}); "
                              "leave --resume out to start again") from None
    if saved.get("fingerprint") != fingerprint(settings):
        differ = changed_settings(saved_settings, settings) or ["fingerprint"]
        raise CheckpointError(f"cannot resume from {path}: it was made with other settings or another split "
                              f"({', '.join(differ[:6])}); rerun the original command with --resume, or leave --resume out to start again")
    return row


def cross_validate(loaded: LoadedFaces, config: TrainConfig, folds: int, out_dir: str | os.PathLike, *,
                   seed: int = 0, model_dir=None, resume: bool = False) -> dict[str, Any]:
    """Run the K trainings; writes ``crossval.json`` in ``out_dir`` and returns it.
    ``resume``: keep the folds finished by an earlier run of the same settings and
    continue the interrupted one from its checkpoint (see the module)."""
    from faceapp.training.run import train_on_split

    out = Path(out_dir)
    groups = kfold_people(loaded.faces.names, folds, seed)
    results = out / FOLDS_DIR
    results.mkdir(parents=True, exist_ok=True)
    if not resume:
        stale = sorted(results.glob("fold-*.json"))
        if stale:
            logger.warning("not resuming: %d earlier fold result(s) in %s removed (use --resume to keep them)", len(stale), results)
        for path in stale:
            path.unlink(missing_ok=True)
    rows = []
    for index, val_names in enumerate(groups):
        train_names = tuple(sorted(name for group in groups if group is not val_names for name in group))
        settings = fold_settings(config, folds, seed + index, train_names, val_names)
        result_file = results / f"fold-{index + 1}.json"
        row = _finished_fold(result_file, settings) if resume else None
        if row is not None:
            logger.info("fold %d/%d: finished by an earlier run, kept from %s", index + 1, folds, result_file)
            rows.append(row)
            continue
        logger.info("fold %d/%d: %d people to train, %d to validate", index + 1, folds, len(train_names), len(val_names))
        checkpoints = results / f"fold-{index + 1}"
        result = train_on_split(loaded, train_names, val_names, config, out / f"fold_{index + 1}", seed=seed + index,
                                model_dir=model_dir, checkpoint_dir=checkpoints, resume=resume)
        row = {
            "fold": index + 1,
            "train_people": len(train_names),
            "validation_people": len(val_names),
            "before": result.before.to_json(),
            "after": result.best.to_json(),
            "best_epoch": result.best_epoch,
        }
        write_json(result_file, {"fingerprint": fingerprint(settings), "settings": settings, "row": row}, what="fold result")
        shutil.rmtree(checkpoints, ignore_errors=True)  # the row is kept: its checkpoints are of no more use
        rows.append(row)
    report = {"folds": folds, "seed": seed, "runs": rows, "summary": summarise(rows)}
    write_json(out / "crossval.json", report, what="cross-validation report")
    return report


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and population std of accuracy and AUC, before and after, over the folds."""
    summary = {}
    for when in ("before", "after"):
        for metric in ("accuracy", "auc"):
            values = np.array([row[when][metric] for row in rows], np.float64)
            summary[f"{when}_{metric}"] = {"mean": round(float(values.mean()), 5), "std": round(float(values.std()), 5)}
    return summary


def format_crossval(report: dict[str, Any]) -> str:
    """A small text table for the terminal."""
    lines = ["fold  people(train/val)  accuracy before -> after   AUC before -> after"]
    for row in report["runs"]:
        lines.append(
            f"{row['fold']:>4}  {row['train_people']:>6}/{row['validation_people']:<10}  "
            f"{row['before']['accuracy']:.4f} -> {row['after']['accuracy']:.4f}     "
            f"{row['before']['auc']:.4f} -> {row['after']['auc']:.4f}"
        )
    s = report["summary"]
    lines.append(
        f"mean  accuracy {s['before_accuracy']['mean']:.4f}±{s['before_accuracy']['std']:.4f} -> "
        f"{s['after_accuracy']['mean']:.4f}±{s['after_accuracy']['std']:.4f}; AUC "
        f"{s['before_auc']['mean']:.4f}±{s['before_auc']['std']:.4f} -> {s['after_auc']['mean']:.4f}±{s['after_auc']['std']:.4f}"
    )
    return "\n".join(lines)
