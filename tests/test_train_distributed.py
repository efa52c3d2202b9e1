"""``faceapp train --workers host:port,host:port --worker-index N``: two workers of a
``tf.distribute.MultiWorkerMirroredStrategy`` on localhost (gRPC, CPU only).

SLOW-ISH (two interpreters training at once on 2 shared CPU cores): 6 LFW people
(``lfw_dir``: skipped locally without LFW, failing in CI), 4 of them training, 3 epochs
of 1 step, each step the whole training set (global batch 16: 8 per worker), 13 of 14
stages frozen, no augmentation or dropout. Both workers must end with status 0 and the
same weights after the last epoch, different from the starting model's (each report
carries their SHA-256), and export the same best epoch (the chief's exported model must
hash as reported); only the chief writes the model folder. The chief's training loss
must fall from the first epoch to the last (0.144, 0.047, 0.030 in one run): at the
default head scale 30 the shipped SFace already separates these 4 people (loss about
1e-4), so the head's scale is 8, which leaves a loss to lower, and the learning rate
1e-4, which lowers it on the same batch every step (1e-3 overshoots: the loss rose).
Not ``--from-scratch``, which trains the batch norms too (synchronised across the
replicas since they were found to drift apart per worker; checked by hand with
``--from-scratch --freeze 0 --lr 1e-3 --scale 30``: loss 16.75, 0.099, 0.003, the last
weights bit-identical), because it takes twice as long.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from train_helpers import training_env


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("localhost", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


EPOCHS = 3


def _args(lfw_dir: Path, out: Path, cache: Path, workers: str, index: int) -> list[str]:
    return [sys.executable, "-m", "faceapp", "train", str(lfw_dir), "--out", str(out), "--min-images", "4",
            "--max-images", "4", "--max-people", "6", "--val-fraction", "0.34", "--cache-dir", str(cache),
            "--epochs", str(EPOCHS), "--steps-per-epoch", "1", "--batch-size", "16", "--freeze", "13", "--dropout", "0",
            "--no-augment", "--val-pairs", "24", "--patience", "5", "--lr", "1e-4", "--scale", "8", "--device", "cpu", "-q", "--json",
            "--workers", workers, "--worker-index", str(index)]


def test_two_workers_on_localhost_agree(lfw_dir, tmp_path):
    from faceapp.embedding.modelcard import load_card
    from faceapp.embedding.runtime import load_keras_model
    from faceapp.training.distributed import weights_digest

    out = tmp_path / "model"  # the same --out on both, as on a shared file system
    workers = ",".join(f"localhost:{port}" for port in _free_ports(2))
    children = [subprocess.Popen(_args(lfw_dir, out, tmp_path / f"crops{index}", workers, index), env=training_env(),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for index in (0, 1)]
    outputs = []
    try:
        for child in children:
            outputs.append(child.communicate(timeout=300))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    for index, (child, (stdout, stderr)) in enumerate(zip(children, outputs)):
        assert child.returncode == 0, f"worker {index} exited {child.returncode}: {stderr[-3000:]}"
    chief, other = (json.loads(stdout) for stdout, _ in outputs)
    assert chief["distributed"]["chief"] and not other["distributed"]["chief"]
    assert chief["distributed"]["workers"] == other["distributed"]["workers"] == 2
    assert "MultiWorkerMirroredStrategy" in chief["device"] and "2 workers" in chief["device"]
    # Synchronous training: both workers end the last epoch with bit-identical weights,
    # which training moved away from the starting model's (the default's SFace) ...
    last = chief["distributed"]["last_epoch_weights_sha256"]
    assert last and last == other["distributed"]["last_epoch_weights_sha256"]
    start = load_card(None)
    assert last != weights_digest(load_keras_model(start.members[0] if start.is_ensemble else start))
    # ... and export the same best epoch's weights: the chief's went to --out (the other
    # worker's copy was temporary).
    assert chief["distributed"]["weights_sha256"] == other["distributed"]["weights_sha256"]
    assert chief["validation"]["best_epoch"] == other["validation"]["best_epoch"]
    card = load_card(out)
    assert card.model_id == chief["model_id"] and card.model_id != other["model_id"]
    assert weights_digest(load_keras_model(card)) == chief["distributed"]["weights_sha256"]
    assert sorted(p.name for p in out.glob("*.weights.h5")) == [f"{chief['model_id']}.weights.h5"]
    assert (out / "checkpoints" / f"ckpt-{EPOCHS}.index").is_file()
    assert not list(Path(tempfile.gettempdir()).glob(f"faceapp-worker1-*/{other['model_id']}.weights.h5"))
    # ... which learnt: the chief's training loss (of the whole global batch) fell.
    loss = json.loads((out / "run" / "history.json").read_text())["history"]["loss"]
    assert len(loss) == EPOCHS and np.all(np.isfinite(loss))
    assert loss[-1] < loss[0], f"the loss did not fall: {loss}"
    assert chief["validation"]["epochs_run"] == other["validation"]["epochs_run"] == EPOCHS
    assert chief["validation"]["after"] == other["validation"]["after"]  # the same validation on both


def test_tf_config_from_workers_and_back(monkeypatch):
    import pytest

    from faceapp.training.distributed import Cluster, DistributedError, cluster, configure_workers, tf_config

    assert tf_config(["a:1", "b:2"], 1) == {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    for workers, index, message in ((["a:1", "a:1"], 0, "twice"), (["a"], 0, "host:port"), (["a:1"], 1, "0..0"),
                                    (["a:70000"], 0, "host:port")):
        with pytest.raises(DistributedError, match=message):
            tf_config(workers, index)
    monkeypatch.setenv("TF_CONFIG", "")  # restored to unset afterwards, whatever the test sets
    assert cluster() == Cluster(1, 0) and cluster().is_chief and not cluster().multi_worker
    with pytest.raises(DistributedError, match="--worker-index"):
        configure_workers("a:1,b:2", None)
    configure_workers("a:1, b:2,c:3", 2)
    assert cluster() == Cluster(3, 2) and not cluster().is_chief and cluster().multi_worker
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(DistributedError, match="not valid JSON"):
        cluster()
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["a:1"], "chief": ["c:1"]}, "task": {"type": "chief"}}')
    with pytest.raises(DistributedError, match="chief"):
        cluster()


def test_worker_options_errors_are_one_line(tmp_path, capsys, monkeypatch):
    from faceapp.cli.main import main

    monkeypatch.setenv("TF_CONFIG", "")  # restored to unset afterwards, whatever the test sets
    assert main(["train", str(tmp_path), "--out", str(tmp_path / "m"), "--worker-index", "0", "-q"]) == 1
    assert "--worker-index needs --workers" in capsys.readouterr().err
    assert main(["train", str(tmp_path), "--out", str(tmp_path / "m"), "--workers", "localhost:1", "--worker-index", "3", "-q"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("faceapp: error:") and "--worker-index must be 0..0" in error and error.count("\n") == 1
