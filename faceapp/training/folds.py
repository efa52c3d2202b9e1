"""K-fold cross-validation by person (``faceapp train --folds K``).

The people are split into K disjoint groups; run ``k`` trains on the other K-1 groups
and measures verification on the pairs of group ``k``'s people. The report gives each
fold's accuracy and AUC before and after training, and their mean and (population)
standard deviation. No model is exported: cross-validation estimates how well a
configuration generalises; train once more without ``--folds`` to get the model.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from faceapp.training.config import TrainConfig
from faceapp.training.data import LoadedFaces, kfold_people

logger = logging.getLogger(__name__)


def cross_validate(loaded: LoadedFaces, config: TrainConfig, folds: int, out_dir: str | os.PathLike, *,
                   seed: int = 0, model_dir=None) -> dict[str, Any]:
    """Run the K trainings; writes ``crossval.json`` in ``out_dir`` and returns it."""
    from faceapp.training.run import train_on_split

    out = Path(out_dir)
    groups = kfold_people(loaded.faces.names, folds, seed)
    rows = []
    for index, val_names in enumerate(groups):
        train_names = tuple(sorted(name for group in groups if group is not val_names for name in group))
        logger.info("fold %d/%d: %d people to train, %d to validate", index + 1, folds, len(train_names), len(val_names))
        result = train_on_split(loaded, train_names, val_names, config, out / f"fold_{index + 1}", seed=seed + index, model_dir=model_dir)
        rows.append({
            "fold": index + 1,
            "train_people": len(train_names),
            "validation_people": len(val_names),
            "before": result.before.to_json(),
            "after": result.best.to_json(),
            "best_epoch": result.best_epoch,
        })
    report = {"folds": folds, "seed": seed, "runs": rows, "summary": summarise(rows)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "crossval.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
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
