"""Hyper-parameter search with optuna (``faceapp train --search N``).

``N`` trials of an optuna study, each drawing a learning rate (log-uniform), a margin
and a frozen depth with a TPE sampler, trained on the same person split and scored by
the validation verification AUC of its best epoch (ties: accuracy). After every epoch
the trial reports that epoch's AUC; a median pruner stops a trial whose AUC falls below
the median of the earlier trials at the same epoch.

The study is kept in a database (``storage``, see :mod:`faceapp.training.study`: SQLite
or PostgreSQL; by default the SQLite file ``OUT_DIR/study.db``), so a rerun adds trials
to the same study and several machines pointed at one PostgreSQL database share one
search, at the same time too (each trial draws with a seed of its own study-wide
number). The table of all the study's
finished trials (those of other runs and machines included) is saved as ``search.csv``
and ``search.json``, best first, with ``importance.png`` (optuna's parameter
importances) once at least two trials completed; the best trial *run here* is
returned for export (the others' weights stay on the machine that trained them).

Resuming (``resume``, ``faceapp train --search N --resume``): a run has an id (host,
process, random part) kept in ``OUT_DIR/run.json`` and set on each of its trials
(``run_id``); ``N`` counts the finished (complete or pruned) trials *of this run*, so a
fresh run adds N trials to the study and a resumed one runs only those still missing to
reach N. Each trial trains with per-epoch checkpoints in ``OUT_DIR/trial_T/resume/``
(removed once it is told). A trial killed with its process is left RUNNING in optuna's
storage (one stopped with Ctrl-C is told FAIL, ``interrupted``): the resumed run marks
this run's RUNNING trials FAIL (``interrupted``; a finished trial is never re-opened)
and continues each in a new trial with the same parameters (``continues_trial``), from
the killed one's checkpoint, with its earlier epochs' AUCs reported again. The trial
exported is the best of this run, trials finished before the interruption included
(rebuilt from their ``trial_T/result.json`` and best weights).

optuna is imported lazily (:func:`import_optuna`): it is in the ``train`` extra.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import shutil
import socket
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceapp.files import write_json
from faceapp.training.config import STAGES, TrainConfig
from faceapp.training.data import LoadedFaces
from faceapp.training.study import (  # noqa: F401 -- the study's storage; also importable from here
    STUDY_FILE,
    SearchError,
    default_storage,
    import_optuna,
    open_study,
    redact,
    storage_url,
)

logger = logging.getLogger(__name__)

DEFAULT_STUDY_NAME = "faceapp-search"
RUN_FILE = "run.json"


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


@dataclass
class SearchOutcome:
    """What :func:`run_search` returns: ``rows`` (all the study's finished trials, best
    first), the best trial run here (``result``, ``config``, ``trial``), the storage and
    study, and the parameter importances (``{}`` with fewer than 2 completed trials)."""

    rows: list[dict[str, Any]]
    result: Any  # TrainResult
    config: TrainConfig
    trial: int
    storage: str
    study_name: str
    importances: dict[str, float] = field(default_factory=dict)
    importance_plot: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {"storage": redact(self.storage), "study_name": self.study_name, "exported_trial": self.trial,
                "importances": self.importances, "trials": self.rows}


def suggest(trial, space: SearchSpace, config: TrainConfig) -> dict[str, Any]:
    """The trial's ``{"learning_rate", "margin", "freeze"}`` drawn from ``space`` (margin
    0 with the softmax head, freeze 0 from scratch: those are not searched)."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", *space.learning_rate, log=True),
        "margin": 0.0 if config.head == "softmax" else trial.suggest_float("margin", *space.margin),
        "freeze": 0 if config.from_scratch else int(trial.suggest_categorical("freeze", list(space.freeze))),
    }


def pruning_callback(trial):
    """A Keras callback reporting each epoch's validation AUC to ``trial`` (step: the
    epoch, from 1) and stopping training when the study's pruner says so (``pruned_at``)."""
    import keras

    from faceapp.training.loop import MONITOR

    class PruningCallback(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.pruned_at: int | None = None
            self.reported: set[int] = set()

        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get(MONITOR)
            if value is None:
                return
            trial.report(float(value), step=epoch + 1)
            self.reported.add(epoch + 1)
            if trial.should_prune():
                self.pruned_at = epoch + 1
                self.model.stop_training = True
                logger.info("trial %d pruned after epoch %d (validation AUC %.4f)", trial.number, epoch + 1, value)

    return PruningCallback()


def _digest(names) -> str:
    return hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()[:16]


def search_setup(config: TrainConfig, seed: int, train_names, val_names, space: SearchSpace) -> dict[str, Any]:
    """What every trial of one study must share: the fixed training options, the split
    (digests of the people, not their names) and the search space."""
    fixed = {k: v for k, v in config.to_json().items() if k not in ("learning_rate", "margin", "freeze", "verbose")}
    return json.loads(json.dumps({"config": fixed, "seed": int(seed), "train_people": _digest(train_names),
                                  "val_people": _digest(val_names), "space": [list(space.learning_rate), list(space.margin),
                                                                              list(space.freeze)]}, default=str))


def _sampler_seed(seed: int, trial_number: int) -> int:
    # Reseeded per trial with its number in the study (the count of trials asked before
    # it): a rerun or another machine does not replay the same random start-up draws, not
    # even two machines asking at the same moment, and a lone machine's run is reproducible.
    return (int(seed) * 1_000_003 + trial_number) % 2**32


def _row(trial) -> dict[str, Any]:
    attrs = trial.user_attrs
    params = trial.params
    return {
        "trial": trial.number,
        "state": trial.state.name.lower(),
        "learning_rate": float(f"{attrs.get('learning_rate', params.get('learning_rate', float('nan'))):.3g}"),
        "margin": round(float(attrs.get("margin", params.get("margin", 0.0))), 3),
        "freeze": int(attrs.get("freeze", params.get("freeze", 0))),
        "accuracy": round(float(attrs.get("accuracy", float("nan"))), 5),
        "auc": round(float(attrs.get("auc", trial.value if trial.value is not None else float("nan"))), 5),
        "best_epoch": attrs.get("best_epoch"),
        "epochs_run": attrs.get("epochs_run"),
        "before_auc": round(float(attrs.get("before_auc", float("nan"))), 5),
        "host": attrs.get("host", ""),
    }


def _rank(row: dict[str, Any]) -> tuple[float, float]:
    def number(value):
        return float("-inf") if math.isnan(value) else value  # NaN last

    return number(row["auc"]), number(row["accuracy"])


def _this_run(out: Path, storage: str, study_name: str, trials: int, resume: bool) -> str:
    """The run id: the earlier one of ``out`` when resuming, else a new one (``run.json``)."""
    path = out / RUN_FILE
    earlier = None
    if resume and path.is_file():
        try:
            earlier = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            earlier = None
        if earlier is not None and (earlier.get("storage"), earlier.get("study_name")) != (redact(storage), study_name):
            raise SearchError(f"cannot resume the search in {out}: it used study {earlier.get('study_name')!r} in "
                              f"{earlier.get('storage')}; rerun the original command with --resume, or leave --resume out")
    if resume and earlier is None:
        logger.info("no earlier search run in %s: starting a new one", out)
    run_id = earlier["run_id"] if earlier else f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    write_json(path, {"run_id": run_id, "storage": redact(storage), "study_name": study_name, "trials": int(trials)},
               what="search run file")
    return run_id


def _take_over_interrupted(optuna, study, run_id: str) -> tuple[list, list]:
    """``(finished, to_continue)`` trials of run ``run_id``: RUNNING ones (killed with an
    earlier process of this run) are marked FAIL (``interrupted``) first; to continue:
    the interrupted trials no later trial of the run continues."""
    states = optuna.trial.TrialState
    mine = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("run_id") == run_id]
    for frozen in mine:
        if frozen.state == states.RUNNING:
            optuna.trial.Trial(study, frozen._trial_id).set_user_attr("interrupted", True)
            study.tell(frozen.number, state=states.FAIL)
            logger.warning("trial %d of this run was interrupted: marked failed, continued in a new trial", frozen.number)
    mine = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("run_id") == run_id]
    finished = [t for t in mine if t.state in (states.COMPLETE, states.PRUNED)]
    continued = {t.user_attrs.get("continues_trial") for t in mine}
    pending = [t for t in mine if t.state == states.FAIL and t.user_attrs.get("interrupted") and t.number not in continued]
    return finished, pending


def _result_record(result) -> dict[str, Any]:
    best = result.best
    return {"before": result.before.to_json(), "best": {"accuracy": best.accuracy, "auc": best.auc, "threshold": best.threshold,
                                                        "scores": [float(v) for v in best.scores],
                                                        "same": [bool(v) for v in best.same]},
            "best_epoch": result.best_epoch, "history": result.history, "images_per_second": result.images_per_second,
            "seconds": result.seconds, "device": result.device, "outputs": result.outputs}


def _load_result(trial_dir: Path, config: TrainConfig):
    """The TrainResult of a trial finished by an earlier process: its ``result.json`` and
    best backbone weights (``checkpoints/best.weights.h5``)."""
    import numpy as np

    from faceapp.embedding.sface import build_sface
    from faceapp.training.loop import TrainResult
    from faceapp.training.validation import Verification

    try:
        saved = json.loads((trial_dir / "result.json").read_text(encoding="utf-8"))
        backbone = build_sface(dropout=config.dropout)
        backbone.load_weights(trial_dir / "checkpoints" / "best.weights.h5")
    except (OSError, ValueError, KeyError) as error:
        raise SearchError(f"cannot export trial {trial_dir.name} of the interrupted run: {type(error).__name__} "
                          f"reading {trial_dir}; leave --resume out to start again") from None
    before, best = saved["before"], saved["best"]
    return TrainResult(
        backbone=backbone, history=saved["history"],
        before=Verification(before["accuracy"], before["auc"], before["threshold"], np.zeros(0), np.zeros(0, bool)),
        best=Verification(best["accuracy"], best["auc"], best["threshold"], np.asarray(best["scores"], np.float64),
                          np.asarray(best["same"], bool)),
        best_epoch=int(saved["best_epoch"]), images_per_second=float(saved["images_per_second"]),
        seconds=float(saved["seconds"]), device=saved["device"], outputs=saved["outputs"])


def run_search(loaded: LoadedFaces, train_names, val_names, config: TrainConfig, trials: int, out_dir: str | os.PathLike, *,
               seed: int = 0, model_dir=None, space: SearchSpace | None = None, storage: str | None = None,
               study_name: str | None = None, pruner=None, resume: bool = False) -> SearchOutcome:
    """Run ``trials`` trials in a new run of the study (created or continued), or with
    ``resume`` those still missing to make ``trials`` in this directory's earlier run;
    see the module."""
    from faceapp.training.loop import MONITOR
    from faceapp.training.run import train_on_split, with_overrides

    optuna = import_optuna()
    space = space or SearchSpace()
    space.validate()
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    storage = storage or default_storage(out)
    study_name = study_name or DEFAULT_STUDY_NAME
    study = open_study(storage, study_name, search_setup(config, seed, train_names, val_names, space), pruner)
    host = socket.gethostname()
    run_id = _this_run(out, storage, study_name, trials, resume)
    earlier, pending = _take_over_interrupted(optuna, study, run_id) if resume else ([], [])
    remaining = max(0, trials - len(earlier))
    if resume:
        logger.info("resuming search run %s: %d of %d trials finished, %d to run (%d continued)", run_id, len(earlier),
                    trials, remaining, min(remaining, len(pending)))
    best = None  # ((auc, accuracy), result, config, number)
    for count in range(1, remaining + 1):
        continues = pending[count - 1] if count <= len(pending) else None
        trial = study.ask()
        # Seeded with the trial's number, unique in the study even when machines ask at once.
        study.sampler = optuna.samplers.TPESampler(seed=_sampler_seed(seed, trial.number))
        if continues is not None:  # the interrupted trial's parameters, all of them fixed
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # PartialFixedSampler is "experimental"
                study.sampler = optuna.samplers.PartialFixedSampler(dict(continues.params), study.sampler)
        params = suggest(trial, space, config)
        trial_config = with_overrides(config, **params)
        trial_dir = out / f"trial_{trial.number}"
        # (a trial killed before it recorded its folder had written no checkpoint there either)
        checkpoint_dir = Path(continues.user_attrs.get("checkpoint_dir", trial_dir / "resume")) if continues is not None else trial_dir / "resume"
        for key, value in {"run_id": run_id, "host": host, "checkpoint_dir": str(checkpoint_dir),
                           **({"continues_trial": continues.number} if continues is not None else {})}.items():
            trial.set_user_attr(key, value)
        logger.info("trial %d (%d/%d here%s): %s", trial.number, len(earlier) + count, trials,
                    f", continuing trial {continues.number}" if continues is not None else "", params)
        callback = pruning_callback(trial)
        try:
            result = train_on_split(loaded, train_names, val_names, trial_config, trial_dir, seed=seed,
                                    model_dir=model_dir, callbacks=(callback,), checkpoint_dir=checkpoint_dir,
                                    resume=continues is not None)
        except BaseException as error:
            if isinstance(error, KeyboardInterrupt):  # as a kill: --resume continues it from its checkpoint
                trial.set_user_attr("interrupted", True)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        for step, value in enumerate(result.history.get(MONITOR, []), 1):  # the epochs before a resume
            if step not in callback.reported:
                trial.report(float(value), step=step)
        (trial_dir / "result.json").write_text(json.dumps(_result_record(result), default=str) + "\n", encoding="utf-8")
        for key, value in {**params, "accuracy": result.best.accuracy, "auc": result.best.auc, "best_epoch": result.best_epoch,
                           "epochs_run": len(result.history.get("loss", [])), "before_auc": result.before.auc,
                           "before_accuracy": result.before.accuracy, "pruned_at": callback.pruned_at,
                           "resumed_from_epoch": result.resumed_from_epoch, "trial_dir": str(trial_dir)}.items():
            trial.set_user_attr(key, value)
        if callback.pruned_at is not None:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, result.best.auc)
        shutil.rmtree(checkpoint_dir, ignore_errors=True)  # told: its checkpoints are of no more use
        key = (result.best.auc, result.best.accuracy)
        if best is None or key > best[0]:
            best = (key, result, trial_config, trial.number)
        del result  # only the best trial's backbone is kept
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    rows = sorted((_row(t) for t in study.get_trials(deepcopy=False, states=finished)), key=_rank, reverse=True)
    write_table(rows, out)
    importances, plot = {}, None
    if len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))) >= 2:
        importances = param_importances(study)
        plot = plot_importances(importances, out / "importance.png") if importances else None
    if earlier:  # trials of this run finished before the interruption: the best of them, if it beats these
        def score(frozen) -> tuple[float, float]:
            return _rank({"auc": float(frozen.user_attrs.get("auc", float("nan"))),
                          "accuracy": float(frozen.user_attrs.get("accuracy", float("nan")))})

        top = max(earlier, key=lambda t: (score(t), -t.number))
        if best is None or score(top) >= best[0]:
            top_config = with_overrides(config, **{k: top.user_attrs[k] for k in ("learning_rate", "margin", "freeze")})
            best = (None, _load_result(Path(top.user_attrs["trial_dir"]), top_config), top_config, top.number)
    _, result, best_config, number = best
    return SearchOutcome(rows, result, best_config, number, storage, study_name, importances, plot)


def write_table(rows: list[dict[str, Any]], out: Path) -> None:
    with open(out / "search.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "search.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


def param_importances(study) -> dict[str, float]:
    """optuna's parameter importances for the AUC (its default evaluator, PED-ANOVA: no
    scikit-learn needed); ``{}`` (logged) when they cannot be computed."""
    optuna = import_optuna()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            evaluator = optuna.importance.PedAnovaImportanceEvaluator()  # optuna 5's default; 4's (fANOVA) needs scikit-learn
            values = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (ImportError, ValueError, RuntimeError, ZeroDivisionError, FloatingPointError) as error:
        logger.warning("no parameter importances: %s", error)
        return {}
    return {name: round(float(value), 5) for name, value in values.items()}


def plot_importances(importances: dict[str, float], path: Path) -> Path:
    """A horizontal bar chart of ``importances`` (matplotlib; optuna's own plots need plotly)."""
    from matplotlib.figure import Figure

    names = list(importances)[::-1]  # most important on top
    figure = Figure(figsize=(6.0, 0.6 + 0.5 * len(names)), dpi=100)
    axis = figure.subplots()
    axis.barh(names, [importances[name] for name in names], color="tab:blue")
    axis.set_xlabel("importance for the validation AUC")
    axis.set_xlim(0.0, max(1.0, max(importances.values(), default=0.0)))
    axis.grid(True, axis="x", alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def format_search(rows: list[dict[str, Any]]) -> str:
    lines = ["trial  state     learning_rate  margin  freeze  val_accuracy  val_auc  (auc before)"]
    for row in rows:
        lines.append(f"{row['trial']:>5}  {row['state']:<8}  {row['learning_rate']:>13.3g}  {row['margin']:>6.3f}  {row['freeze']:>6}  "
                     f"{row['accuracy']:>12.4f}  {row['auc']:>7.4f}  ({row['before_auc']:.4f})")
    return "\n".join(lines)
