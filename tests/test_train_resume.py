"""``faceapp train --out M`` checkpoints every epoch and ``--resume`` survives ``kill -9``;
``faceapp train --from-shards DIR --out M`` trains from a shard folder.

SLOW-ISH (two interpreter starts, about 30-40 s on 2 CPU cores): a 3-epoch run of one
step per epoch (batch 4, 13 of 14 stages frozen, no augmentation) on 6 LFW people
(``lfw_dir``: skipped locally without LFW, failing in CI) is killed with SIGKILL as soon
as its first checkpoint is complete, then rerun with ``--resume``. The child process
holds still after its first save (a patch in the child only), so the kill always lands
between epochs 1 and 2 and the test does not race the training.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from train_helpers import tiny_train_args, training_env

#: Run in the child: the real CLI, except that after the first checkpoint it waits to be killed.
HOLD_AFTER_FIRST_CHECKPOINT = """
import sys, time
from faceapp.training import checkpoints
original = checkpoints.TrainingCheckpoints.save
def save(self, epoch, state):
    path = original(self, epoch, state)
    if epoch == 1:
        print("CHECKPOINTED", path, flush=True)
        time.sleep(300)
    return path
checkpoints.TrainingCheckpoints.save = save
from faceapp.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_kill_9_after_the_first_checkpoint_then_resume(lfw_dir, tmp_path):
    out, cache = tmp_path / "model", tmp_path / "crops"
    args = tiny_train_args(lfw_dir, out, cache, 3)
    child = subprocess.Popen([sys.executable, "-c", HOLD_AFTER_FIRST_CHECKPOINT, *args], env=training_env(2),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    index = out / "checkpoints" / "checkpoint"  # rewritten atomically once a checkpoint is complete
    deadline = time.monotonic() + 240
    try:
        while not index.is_file():
            assert child.poll() is None, f"training ended before its first checkpoint: {child.communicate()}"
            assert time.monotonic() < deadline, "no checkpoint within 240 s"
            time.sleep(0.1)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    assert not (out / "model_card.json").exists() and not (out / "run" / "history.json").exists()
    assert 'ckpt-1"' in index.read_text()

    resumed = subprocess.run([sys.executable, "-m", "faceapp", *args, "--resume", "--json"], env=training_env(2),
                             capture_output=True, text=True, timeout=240, check=False)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    report = json.loads(resumed.stdout)
    assert report["validation"]["resumed_from_epoch"] == 1 and report["validation"]["epochs_run"] == 3
    history = json.loads((out / "run" / "history.json").read_text())
    assert history["resumed_from_epoch"] == 1
    assert all(len(values) == 3 for values in history["history"].values()), history["history"]
    assert np.all(np.isfinite(history["history"]["loss"]))
    with (out / "run" / "history.csv").open() as rows:
        assert [int(row["epoch"]) for row in csv.DictReader(rows)] == [0, 1, 2]  # epoch 1 from the first run
    assert 'ckpt-3"' in index.read_text()

    from faceapp.embedding.modelcard import load_card
    from faceapp.embedding.runtime import load_keras_model

    card = load_card(out)
    assert card.model_id == report["model_id"]
    weights = load_keras_model(card).get_weights()
    assert weights and all(np.all(np.isfinite(w)) for w in weights)


def test_resume_is_refused_where_it_cannot_apply(tmp_path, capsys):
    from faceapp.cli.main import main

    data = tmp_path / "data"
    data.mkdir()
    assert main(["train", str(data), "--shards", str(tmp_path / "s"), "--resume", "-q"]) == 1
    assert "--resume need --out" in capsys.readouterr().err
    # --folds and --search resume too (tests/test_train_resume_folds.py); combining them still makes no sense.
    assert main(["train", str(data), "--out", str(tmp_path / "m"), "--folds", "3", "--search", "2", "--resume", "-q"]) == 1
    error = capsys.readouterr().err
    assert "--folds and --search cannot be combined" in error and error.count("\n") == 1


def test_a_checkpoint_of_other_settings_is_refused(tmp_path):
    """In-process, tiny: a checkpoint made with one config cannot be resumed with another."""
    import keras

    from faceapp.training.checkpoints import CheckpointError, TrainingCheckpoints

    def store(learning_rate: float):
        backbone = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model = keras.Sequential([backbone, keras.layers.Dense(2)])
        optimizer = keras.optimizers.AdamW(learning_rate)
        model.compile(optimizer, "mse")
        identity = {"config": {"learning_rate": learning_rate, "verbose": 0}, "seed": 0, "train_people": ["a"], "val_people": ["b"]}
        return TrainingCheckpoints(tmp_path, model, optimizer, backbone, identity), model

    first, model = store(1e-3)
    model.fit(np.ones((4, 3)), np.ones((4, 2)), verbose=0)
    first.save(1, {"history": {"loss": [1.0]}})
    again, _ = store(1e-3)
    state = again.restore()
    assert state["epoch"] == 1 and state["history"] == {"loss": [1.0]}
    assert int(again.checkpoint.optimizer.iterations.numpy()) == 1
    with pytest.raises(CheckpointError, match="other settings .*learning_rate"):
        store(1e-2)[0].restore()


# --------------------------------------------------------------------------- --from-shards
def test_train_from_shards_writes_a_model(fixtures_dir, lfw_dir, tmp_path, capsys):
    """Shards of the fixture photos (obama, biden) and 4 LFW people, then one epoch of 2
    steps from them, in-process."""
    import shutil

    from faceapp.cli.main import main
    from faceapp.embedding.modelcard import load_card
    from faceapp.embedding.runtime import load_keras_model
    from faceapp.training.config import DataConfig
    from faceapp.training.data import select_images
    from faceapp.training.shards import read_manifest

    photos = tmp_path / "photos"
    for person in ("obama", "biden"):
        shutil.copytree(fixtures_dir / person, photos / person)
    for name, paths in select_images(DataConfig(lfw_dir, min_images=4, max_images_per_person=3, max_people=4)).items():
        (photos / name).mkdir(parents=True)
        for path in paths:
            shutil.copy(path, photos / name / path.name)
    shards, out = tmp_path / "shards", tmp_path / "model"
    assert main(["train", str(photos), "--shards", str(shards), "--images-per-shard", "5", "-q"]) == 0
    assert read_manifest(shards)["complete"] and len(read_manifest(shards)["people"]) == 6
    capsys.readouterr()
    assert main(["train", "--from-shards", str(shards), "--out", str(out), "--val-fraction", "0.34", "--epochs", "1",
                 "--steps-per-epoch", "2", "--batch-size", "4", "--freeze", "13", "--dropout", "0", "--no-augment",
                 "--val-pairs", "16", "--device", "cpu", "-q", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["data"]["train"]["people"] == 4 and report["data"]["validation"]["people"] == 2
    assert report["data"]["images"] == 4 + 2 + 4 * 3 and report["validation"]["epochs_run"] == 1
    people = json.loads((out / "people.json").read_text())
    assert not set(people["train"]) & set(people["validation"]) and len(people["train"]) + len(people["validation"]) == 6
    card = load_card(out)
    assert card.model_id == report["model_id"] != "sface-2021dec"
    assert all(np.all(np.isfinite(w)) for w in load_keras_model(card).get_weights())
    history = json.loads((out / "run" / "history.json").read_text())["history"]
    assert len(history["loss"]) == 1 and np.isfinite(history["loss"][0])
    assert (out / "checkpoints" / "ckpt-1.index").is_file()
    assert report["outputs"]["report"] == str(out / "report.json") and (out / "report.png").is_file()
    assert json.loads((out / "report.json").read_text())["counts"]["people"] == 2


def test_from_shards_option_errors_are_one_line(tmp_path, capsys):
    from faceapp.cli.main import main

    assert main(["train", "--out", str(tmp_path / "m"), "-q"]) == 1
    assert "DATA_DIR is required" in capsys.readouterr().err
    assert main(["train", str(tmp_path), "--from-shards", str(tmp_path), "--out", str(tmp_path / "m"), "-q"]) == 1
    assert "not both" in capsys.readouterr().err
    assert main(["train", "--from-shards", str(tmp_path / "none"), "--out", str(tmp_path / "m"), "-q"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("faceapp: error:") and error.count("\n") == 1
    # The options that choose faces while the shards are written are refused, not ignored.
    assert main(["train", "--from-shards", str(tmp_path), "--out", str(tmp_path / "m"), "--max-images", "3",
                 "--no-face", "centre", "-q"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("faceapp: error: --max-images, --no-face: the faces of a shard folder are chosen when it is written")
    assert error.count("\n") == 1 and not (tmp_path / "m").exists()
    assert main(["train", "--from-shards", str(tmp_path), "--out", str(tmp_path / "m"), "--multiple-faces", "skip", "-q"]) == 1
    assert "--multiple-faces: the faces of a shard folder" in capsys.readouterr().err
    assert main(["train", str(tmp_path), "--out", str(tmp_path / "m"), "--exclude-folds", "9-10", "-q"]) == 1
    assert "--exclude-folds needs --exclude-people-from-pairs" in capsys.readouterr().err
