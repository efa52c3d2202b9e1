"""``faceapp train --search N``: the optuna study in SQLite, continued by a rerun, pruning
on the per-epoch validation AUC, the table and the importance plot.

The trials are 2 epochs of 1 step on 6 LFW people (``lfw_dir`` fixture: skipped locally
without LFW, failing in CI), the backbone mostly frozen.
"""

from __future__ import annotations

import json
import sys

import pytest

from faceapp.training.config import AugmentConfig, DataConfig, TrainConfig

optuna = pytest.importorskip("optuna")


@pytest.fixture(scope="module")
def tiny_split(lfw_dir, tmp_path_factory):
    from faceapp.training.data import load_faces, split_people

    data = DataConfig(lfw_dir, min_images=4, max_images_per_person=4, max_people=6, val_fraction=0.34,
                      cache_dir=tmp_path_factory.mktemp("crops"))
    loaded = load_faces(data)
    return loaded, *split_people(loaded.faces.names, data.val_fraction, data.seed)


CONFIG = TrainConfig(epochs=2, batch_size=8, steps_per_epoch=1, freeze=13, dropout=0.0, val_pairs=24,
                     augment=AugmentConfig(enabled=False), verbose=0, patience=5)


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def test_study_in_sqlite_is_continued_pruned_and_tabulated(tiny_split, tmp_path):
    from faceapp.training.search import SearchError, SearchSpace, open_study, run_search, search_setup

    loaded, train_names, val_names = tiny_split
    space = SearchSpace(freeze=(12, 13))
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    out = tmp_path / "search"
    first = run_search(loaded, train_names, val_names, CONFIG, 2, out, space=space, storage=storage, study_name="s")
    study = optuna.load_study(study_name="s", storage=storage)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    for trial in study.trials:  # every epoch's validation AUC reported to the pruner
        assert sorted(trial.intermediate_values) == [1, 2]
        assert trial.value == pytest.approx(trial.user_attrs["auc"])
        assert 1e-4 <= trial.params["learning_rate"] <= 1e-2 and trial.params["freeze"] in (12, 13)
    assert first.trial in (0, 1) and first.result.backbone is not None and first.config.freeze in (12, 13)
    assert (out / "importance.png").is_file() and first.importance_plot == out / "importance.png"
    assert set(first.importances) <= {"learning_rate", "margin", "freeze"}

    # A rerun (another machine) with the same storage and name adds to the same study.
    again = run_search(loaded, train_names, val_names, CONFIG, 1, tmp_path / "elsewhere", space=space, storage=storage,
                       study_name="s", pruner=AlwaysPrune())
    study = optuna.load_study(study_name="s", storage=storage)
    assert len(study.trials) == 3 and len(optuna.get_all_study_names(storage)) == 1
    pruned = study.trials[2]
    assert pruned.state == optuna.trial.TrialState.PRUNED and pruned.user_attrs["pruned_at"] == 1
    assert pruned.user_attrs["epochs_run"] == 1 and sorted(pruned.intermediate_values) == [1]  # stopped after epoch 1
    assert pruned.params != study.trials[0].params  # the sampler was not replayed
    assert again.trial == 2  # the best trial run *here* is exported
    rows = json.loads((tmp_path / "elsewhere" / "search.json").read_text())
    assert sorted(row["trial"] for row in rows) == [0, 1, 2]
    assert [row["auc"] for row in rows] == sorted((row["auc"] for row in rows), reverse=True)
    assert {row["state"] for row in rows} == {"complete", "pruned"}
    assert (tmp_path / "elsewhere" / "search.csv").read_text().splitlines()[0].startswith("trial,state,learning_rate")

    # Another split or configuration may not join the study.
    other = search_setup(CONFIG, 1, train_names, val_names, space)
    with pytest.raises(SearchError, match="other settings.*seed"):
        open_study(storage, "s", other)


def test_search_errors_are_one_line(tmp_path, monkeypatch):
    from faceapp.training.search import SearchError, default_storage, import_optuna, open_study, redact, storage_url

    assert default_storage(tmp_path) == f"sqlite:///{tmp_path.resolve() / 'study.db'}"
    assert redact("postgresql://me:secret@db.example/faceapp") == "postgresql://me:***@db.example/faceapp"
    # PostgreSQL without a driver goes through psycopg 3 (the project's), not psycopg2.
    assert storage_url("postgresql://me:secret@db:5432/f") == "postgresql+psycopg://me:secret@db:5432/f"
    assert storage_url("postgres://db/f") == "postgresql+psycopg://db/f"
    for kept in ("postgresql+psycopg2://db/f", "sqlite:///x.db", "mysql://db/f"):
        assert storage_url(kept) == kept
    with pytest.raises(SearchError, match=r"cannot open the study storage postgresql://me:\*\*\*@127\.0\.0\.1:1/f: ") as caught:
        open_study("postgresql://me:secret@127.0.0.1:1/f", "s", {})  # nothing listens on port 1
    assert "\n" not in str(caught.value) and "secret" not in str(caught.value)
    with pytest.raises(SearchError, match="cannot open the study storage nosuchdb://x") as caught:
        open_study("nosuchdb://x", "s", {})
    assert "\n" not in str(caught.value)
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(SearchError, match=r"pip install -e '\.\[train\]'"):
        import_optuna()


def test_study_options_need_search(tmp_path):
    from faceapp.cli.main import build_parser
    from faceapp.cli.train import TrainingError, cmd_train

    args = build_parser().parse_args(["train", str(tmp_path), "--out", str(tmp_path / "m"), "--study-name", "x"])
    with pytest.raises(TrainingError, match="need --search"):
        cmd_train(args)
