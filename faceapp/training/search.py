"""Hyper-parameter search with optuna (``faceapp train --search N``).

``N`` trials of an optuna study, each drawing a learning rate (log-uniform), a margin
and a frozen depth with a TPE sampler, trained on the same person split and scored by
the validation verification AUC of its best epoch (ties: accuracy). After every epoch
the trial reports that epoch's AUC; a median pruner stops a trial whose AUC falls below
the median of the earlier trials at the same epoch.

The study is kept in a database (``storage``: an SQLAlchemy URL such as
``sqlite:///study.db`` or ``postgresql://user:password@host:port/db``, opened with
psycopg 3 when it names no driver, see :func:`storage_url`; by default the SQLite file
``OUT_DIR/study.db``), so a rerun adds trials to the same study and several machines
pointed at one PostgreSQL database share one search, at the same time too (each trial
draws with a seed of its own study-wide number). Passwords are never printed (:func:`redact`). The table of all the study's
finished trials (those of other runs and machines included) is saved as ``search.csv``
and ``search.json``, best first, with ``importance.png`` (optuna's parameter
importances) once at least two trials completed; the best trial *run here* is
returned for export (the others' weights stay on the machine that trained them).

optuna is imported lazily (:func:`import_optuna`): it is in the ``train`` extra.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import re
import socket
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceapp.training.config import STAGES, TrainConfig
from faceapp.training.data import LoadedFaces

logger = logging.getLogger(__name__)

DEFAULT_STUDY_NAME = "faceapp-search"
STUDY_FILE = "study.db"
INSTALL_HINT = "pip install -e '.[train]'"


class SearchError(ValueError):
    """optuna missing, a storage that cannot be opened, or a study made with other settings."""


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


def import_optuna():
    """optuna, quiet (warnings only), or :class:`SearchError` naming the extra to install."""
    try:
        import optuna
    except ImportError:
        raise SearchError(f"--search needs optuna, which is not installed: {INSTALL_HINT}") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def default_storage(out_dir: str | os.PathLike) -> str:
    """``sqlite:///OUT_DIR/study.db`` (absolute), so a rerun continues the study."""
    return f"sqlite:///{(Path(out_dir) / STUDY_FILE).resolve()}"


def redact(url: str) -> str:
    """``url`` without its password (``postgresql://user:***@host/db``)."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


#: URL schemes without a driver mapped to the driver the project ships (psycopg 3, the
#: ``postgres`` extra); SQLAlchemy's own default for ``postgresql://`` would be psycopg2.
_DEFAULT_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}


def storage_url(url: str) -> str:
    """The SQLAlchemy URL optuna opens for ``url``: ``postgresql://`` (or ``postgres://``)
    without a driver becomes ``postgresql+psycopg://`` (psycopg 3); a URL naming its
    driver (``postgresql+psycopg2://``), SQLite and the rest are left as they are."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() in _DEFAULT_DRIVERS:
        return f"{_DEFAULT_DRIVERS[scheme.lower()]}://{rest}"
    return url


def _hide_password(message: str, url: str) -> str:
    """``message`` with ``url``'s password (should a driver quote it) replaced by ``***``."""
    match = re.search(r"://[^:/@]*:([^@/]+)@", url)
    if match:
        from urllib.parse import unquote

        for secret in {match.group(1), unquote(match.group(1))}:
            message = message.replace(secret, "***")
    return message


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

        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get(MONITOR)
            if value is None:
                return
            trial.report(float(value), step=epoch + 1)
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


def open_study(storage: str, study_name: str, setup: dict[str, Any], pruner=None):
    """Create or load the study; :class:`SearchError` if the storage cannot be opened or
    the study was made with another ``setup``."""
    optuna = import_optuna()
    pruner = pruner if pruner is not None else optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    url = storage_url(storage)
    try:
        study = _create_study(optuna, url, study_name, pruner)
    except ImportError as error:
        raise SearchError(f"cannot open the study storage {redact(storage)}: {_hide_password(str(error), storage)} "
                          "(install its database driver)") from None
    except Exception as error:  # noqa: BLE001 - SQLAlchemy's errors: one line for the user
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise SearchError(f"cannot open the study storage {redact(storage)}: {_hide_password(message, storage)}") from None
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise SearchError(f"study {study_name!r} in {redact(storage)} minimises its objective: not a faceapp search")
    known = study.user_attrs.get("faceapp_setup")
    if known is None:
        study.set_user_attr("faceapp_setup", setup)
    elif known != setup:
        differ = sorted({*known, *setup} - {k for k in setup if known.get(k) == setup[k]})
        if "config" in differ:
            differ.remove("config")
            differ += [f"config.{k}" for k in sorted({*known["config"], *setup["config"]})
                       if known["config"].get(k) != setup["config"].get(k)]
        raise SearchError(f"study {study_name!r} in {redact(storage)} was made with other settings ({', '.join(differ)}): "
                          "run with the same options and data, or choose another --study-name")
    return study


def _create_study(optuna, url: str, study_name: str, pruner, attempts: int = 4):
    """``optuna.create_study`` on ``url`` (loading the study if it exists). A database
    server is opened with ``pool_pre_ping`` (a connection it dropped during a long trial
    is replaced), and the opening is retried when machines starting at once race to
    create optuna's tables (an IntegrityError or ProgrammingError for all but one)."""
    if url.startswith("sqlite"):
        return optuna.create_study(storage=url, study_name=study_name, direction="maximize", load_if_exists=True,
                                   pruner=pruner)
    import sqlalchemy.exc

    for attempt in range(1, attempts + 1):
        try:
            storage = optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
            return optuna.create_study(storage=storage, study_name=study_name, direction="maximize", load_if_exists=True,
                                       pruner=pruner)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as error:
            if attempt == attempts:
                raise
            logger.info("study storage busy (%s), retrying", type(error).__name__)
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


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


def run_search(loaded: LoadedFaces, train_names, val_names, config: TrainConfig, trials: int, out_dir: str | os.PathLike, *,
               seed: int = 0, model_dir=None, space: SearchSpace | None = None, storage: str | None = None,
               study_name: str | None = None, pruner=None) -> SearchOutcome:
    """Run ``trials`` more trials of the study (created or continued); see the module."""
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
    best = None  # ((auc, accuracy), result, config, number)
    for count in range(1, trials + 1):
        trial = study.ask()
        # Seeded with the trial's number, unique in the study even when machines ask at once.
        study.sampler = optuna.samplers.TPESampler(seed=_sampler_seed(seed, trial.number))
        params = suggest(trial, space, config)
        trial_config = with_overrides(config, **params)
        logger.info("trial %d (%d/%d here): %s", trial.number, count, trials, params)
        callback = pruning_callback(trial)
        try:
            result = train_on_split(loaded, train_names, val_names, trial_config, out / f"trial_{trial.number}", seed=seed,
                                    model_dir=model_dir, callbacks=(callback,))
        except BaseException:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        for key, value in {**params, "accuracy": result.best.accuracy, "auc": result.best.auc, "best_epoch": result.best_epoch,
                           "epochs_run": len(result.history.get("loss", [])), "before_auc": result.before.auc,
                           "before_accuracy": result.before.accuracy, "pruned_at": callback.pruned_at, "host": host,
                           "trial_dir": str(out / f"trial_{trial.number}")}.items():
            trial.set_user_attr(key, value)
        if callback.pruned_at is not None:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, result.best.auc)
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
