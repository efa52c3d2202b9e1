"""``faceapp train --folds K --resume`` and ``--search N --resume`` survive ``kill -9``.

SLOW-ISH (two interpreter starts per test, each about 30-60 s on 2 CPU cores): tiny runs
as in tests/test_train_resume.py (6 LFW people, 2 epochs of one step, batch 4, 13 of 14
stages frozen; ``lfw_dir``: skipped locally without LFW, failing in CI). The child holds
still after the first checkpoint of fold 2 (or of trial 1, the second trial) is written
(a patch in the child only), so the kill always lands between that fold's (trial's)
epochs 1 and 2 and the test does not race the training.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from train_helpers import tiny_train_args, training_env

#: Run in the child: the real CLI, except that after the first checkpoint written in a
#: folder whose path contains argv[1] it waits to be killed.
HOLD_AFTER_CHECKPOINT_IN = """
import sys, time
from faceapp.training import checkpoints
where = sys.argv.pop(1)
original = checkpoints.TrainingCheckpoints.save
def save(self, epoch, state):
    path = original(self, epoch, state)
    if epoch == 1 and where in str(self.directory):
        print("CHECKPOINTED", path, flush=True)
        time.sleep(300)
    return path
checkpoints.TrainingCheckpoints.save = save
from faceapp.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def _kill_after_checkpoint(args: list[str], where: str, index: Path) -> None:
    """Run the CLI with ``args`` in a child, SIGKILL it once ``index`` (a checkpoint index
    file, rewritten atomically when a checkpoint is complete) exists."""
    # The child's output goes to a file, not a pipe nobody reads while it trains (a full pipe would block it).
    log = Path(tempfile.mkdtemp(prefix="faceapp-resume-")) / f"child-{where}.log"  # outside --out
    with log.open("w") as sink:
        child = subprocess.Popen([sys.executable, "-c", HOLD_AFTER_CHECKPOINT_IN, where, *args], env=training_env(2),
                                 stdout=sink, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 900  # a guard against a hang on a very busy machine, not a speed target
    try:
        while not index.is_file():
            assert child.poll() is None, f"training ended before the checkpoint: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no checkpoint within 900 s: {log.read_text()[-3000:]}"
            time.sleep(0.1)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL


def _resume(args: list[str]) -> subprocess.CompletedProcess:
    resumed = subprocess.run([sys.executable, "-m", "faceapp", *args, "--resume", "--json", "-v"], env=training_env(2),
                             capture_output=True, text=True, timeout=300, check=False)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return resumed


def test_folds_kill_9_during_fold_2_then_resume(lfw_dir, tmp_path):
    from faceapp.training.folds import summarise

    out, cache = tmp_path / "model", tmp_path / "crops"
    args = [*tiny_train_args(lfw_dir, out, cache, 2), "--folds", "2"]
    _kill_after_checkpoint(args, "fold-2", out / "folds" / "fold-2" / "checkpoint")
    first = out / "folds" / "fold-1.json"
    assert first.is_file() and not (out / "folds" / "fold-2.json").exists() and not (out / "crossval.json").exists()
    assert not (out / "folds" / "fold-1").exists()  # a finished fold's checkpoints are removed
    kept_row, kept_mtime = json.loads(first.read_text())["row"], first.stat().st_mtime_ns

    resumed = _resume(args)
    report = json.loads(resumed.stdout)
    assert first.stat().st_mtime_ns == kept_mtime  # fold 1 was not trained again
    assert "fold 1/2: finished by an earlier run" in resumed.stderr
    assert "resuming from the checkpoint of epoch 1 of 2" in resumed.stderr  # fold 2 continued
    # The structure of an uninterrupted run's report, each fold once, and its summary.
    assert set(report) == {"folds", "seed", "runs", "summary"} and report["folds"] == 2
    assert [row["fold"] for row in report["runs"]] == [1, 2] and report["runs"][0] == kept_row
    assert report["summary"] == summarise(report["runs"])
    assert set(report["summary"]) == {"before_accuracy", "before_auc", "after_accuracy", "after_auc"}
    assert json.loads((out / "crossval.json").read_text()) == report
    assert json.loads((out / "folds" / "fold-2.json").read_text())["row"] == report["runs"][1]
    history = json.loads((out / "fold_2" / "history.json").read_text())
    assert history["resumed_from_epoch"] == 1 and len(history["history"]["loss"]) == 2

    # Results of other settings are refused in one line.
    other = [*args[: args.index("--lr") + 1], "3e-3", *args[args.index("--lr") + 2:]]
    refused = subprocess.run([sys.executable, "-m", "faceapp", *other, "--resume"], env=training_env(2), capture_output=True,
                             text=True, timeout=300, check=False)
    assert refused.returncode == 1
    assert "made with other settings or another split (config.learning_rate)" in refused.stderr
    assert refused.stderr.strip().count("\n") == 0, refused.stderr


def test_search_kill_9_during_trial_2_then_resume(lfw_dir, tmp_path):
    optuna = pytest.importorskip("optuna")
    out, cache = tmp_path / "model", tmp_path / "crops"
    args = [*tiny_train_args(lfw_dir, out, cache, 2), "--search", "2"]
    _kill_after_checkpoint(args, "trial_1", out / "search" / "trial_1" / "resume" / "checkpoint")
    storage = f"sqlite:///{out / 'search' / 'study.db'}"
    study = optuna.load_study(study_name="faceapp-search", storage=storage)
    states = optuna.trial.TrialState
    assert [t.state for t in study.trials] == [states.COMPLETE, states.RUNNING]  # optuna cannot know it died
    run_id = json.loads((out / "search" / "run.json").read_text())["run_id"]

    resumed = _resume(args)
    report = json.loads(resumed.stdout)
    study = optuna.load_study(study_name="faceapp-search", storage=storage)
    mine = [t for t in study.trials if t.user_attrs.get("run_id") == run_id]
    assert len(mine) == 3 and not [t for t in study.trials if t.state == states.RUNNING]
    complete = [t for t in mine if t.state == states.COMPLETE]
    assert [t.number for t in complete] == [0, 2]  # 2 trials of this run: no third one was started
    killed, continued = study.trials[1], study.trials[2]
    assert killed.state == states.FAIL and killed.user_attrs["interrupted"]
    assert continued.user_attrs["continues_trial"] == 1 and continued.params == killed.params
    assert continued.user_attrs["resumed_from_epoch"] == 1  # from the killed trial's own checkpoint
    assert sorted(continued.intermediate_values) == [1, 2]
    assert sorted(row["trial"] for row in report["search"]) == [0, 2]
    assert report["study"]["exported_trial"] in (0, 2) and (out / "card.json").is_file()

    # Resumed once more, the run is complete: no trial is run, the best of the run is
    # rebuilt from its folder and exported again.
    again = json.loads(_resume(args).stdout)
    assert len(optuna.load_study(study_name="faceapp-search", storage=storage).trials) == 3
    assert again["study"]["exported_trial"] == report["study"]["exported_trial"]
    assert again["validation"]["after"] == report["validation"]["after"]
