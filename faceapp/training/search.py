"""A small random hyper-parameter search (``faceapp train --search N``).

Hand-rolled (keras-tuner is not a dependency of the app): ``N`` trials, each drawing a
learning rate (log-uniform), a margin and a frozen depth, trained on the same person
split and ranked by validation verification AUC (then accuracy). The table is saved
as ``search.csv`` and ``search.json``; the best trial's backbone is returned for export.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceapp.training.config import STAGES, TrainConfig
from faceapp.training.data import LoadedFaces

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchSpace:
    """Ranges sampled by the search. ``freeze``: the frozen depths to choose from."""

    learning_rate: tuple[float, float] = (1e-4, 1e-2)
    margin: tuple[float, float] = (0.2, 0.5)
    freeze: tuple[int, ...] = (8, 10, 12, 13)

    def validate(self) -> None:
        low, high = self.learning_rate
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"learning_rate range must satisfy 0 < low <= high <= 1, got {self.learning_rate}")
        if not 0.0 <= self.margin[0] <= self.margin[1] < 1.0:
            raise ValueError(f"margin range must be within [0, 1), got {self.margin}")
        if not self.freeze or any(not 0 <= f <= STAGES for f in self.freeze):
            raise ValueError(f"freeze choices must be in [0, {STAGES}], got {self.freeze}")


def draw_trials(space: SearchSpace, trials: int, seed: int, head: str) -> list[dict[str, Any]]:
    """``trials`` parameter sets: ``{"learning_rate", "margin", "freeze"}``."""
    space.validate()
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    rng = np.random.default_rng(seed)
    low, high = math.log(space.learning_rate[0]), math.log(space.learning_rate[1])
    return [
        {
            "learning_rate": float(f"{math.exp(rng.uniform(low, high)):.3g}"),
            "margin": 0.0 if head == "softmax" else round(float(rng.uniform(*space.margin)), 3),
            "freeze": int(rng.choice(space.freeze)),
        }
        for _ in range(trials)
    ]


def random_search(loaded: LoadedFaces, train_names, val_names, config: TrainConfig, trials: int,
                  out_dir: str | os.PathLike, *, seed: int = 0, model_dir=None, space: SearchSpace | None = None):
    """Run the trials; returns ``(rows sorted best first, best TrainResult, best config)``."""
    from faceapp.training.run import train_on_split, with_overrides

    out = Path(out_dir)
    rows, results = [], []
    for number, params in enumerate(draw_trials(space or SearchSpace(), trials, seed, config.head), start=1):
        trial_config = with_overrides(config, learning_rate=params["learning_rate"], margin=params["margin"],
                                      freeze=0 if config.from_scratch else params["freeze"])
        logger.info("trial %d/%d: %s", number, trials, params)
        result = train_on_split(loaded, train_names, val_names, trial_config, out / f"trial_{number}", seed=seed, model_dir=model_dir)
        rows.append({"trial": number, **params, "accuracy": round(result.best.accuracy, 5), "auc": round(result.best.auc, 5),
                     "best_epoch": result.best_epoch, "before_auc": round(result.before.auc, 5)})
        results.append((result, trial_config))
    order = sorted(range(len(rows)), key=lambda i: (rows[i]["auc"], rows[i]["accuracy"]), reverse=True)
    rows = [rows[i] for i in order]
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "search.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "search.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    best_result, best_config = results[order[0]]
    return rows, best_result, best_config


def format_search(rows: list[dict[str, Any]]) -> str:
    lines = ["trial  learning_rate  margin  freeze  val_accuracy  val_auc  (auc before)"]
    for row in rows:
        lines.append(f"{row['trial']:>5}  {row['learning_rate']:>13.3g}  {row['margin']:>6.3f}  {row['freeze']:>6}  "
                     f"{row['accuracy']:>12.4f}  {row['auc']:>7.4f}  ({row['before_auc']:.4f})")
    return "\n".join(lines)
