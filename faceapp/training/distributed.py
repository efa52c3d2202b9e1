"""Training across machines: ``tf.distribute.MultiWorkerMirroredStrategy``.

A multi-worker run is described by ``TF_CONFIG`` (TensorFlow's own JSON:
``{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": N}}``),
or built from ``faceapp train --workers host:port,host:port --worker-index N``
(:func:`configure_workers`). Every worker runs the same command on the same data; each
reads the whole training stream and keeps its share of every batch (``tf.data`` DATA
sharding), gradients are all-reduced, so all workers hold the same weights.

Outputs follow TensorFlow's multi-worker checkpoint pattern: only the chief (index 0)
writes to the model directory; the others write the same files (checkpoints, best
weights, history, export) into a temporary folder that is removed at the end. ``--resume``
on a non-chief worker restores from the chief's checkpoint folder, so it needs a
shared file system (or a copy of it at the same path).

The strategy must exist before TensorFlow runs any operation in the process (the
collective runtime is configured at start-up): the CLI calls :func:`strategy` first;
:func:`faceapp.training.loop.choose_strategy` reuses it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from faceapp.errors import FaceAppError

_STRATEGY = None


class DistributedError(FaceAppError):
    """Bad ``TF_CONFIG`` or ``--workers``/``--worker-index``."""


@dataclass(frozen=True)
class Cluster:
    """This process's place in a multi-worker run (``workers == 1``: a single machine)."""

    workers: int = 1
    index: int = 0

    @property
    def is_chief(self) -> bool:
        return self.index == 0

    @property
    def multi_worker(self) -> bool:
        return self.workers > 1


def tf_config(workers: list[str] | tuple[str, ...], index: int) -> dict:
    """The ``TF_CONFIG`` of worker ``index`` of ``workers`` (``host:port`` each)."""
    workers = [w.strip() for w in workers if w.strip()]
    if len(workers) < 1:
        raise DistributedError("--workers needs at least one host:port")
    for worker in workers:
        host, _, port = worker.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise DistributedError(f"--workers: {worker!r} is not host:port")
    if len(set(workers)) != len(workers):
        raise DistributedError("--workers names the same host:port twice")
    if not 0 <= index < len(workers):
        raise DistributedError(f"--worker-index must be 0..{len(workers) - 1}, got {index}")
    return {"cluster": {"worker": workers}, "task": {"type": "worker", "index": int(index)}}


def configure_workers(workers: str, index: int | None) -> dict:
    """Set ``TF_CONFIG`` from ``--workers a:1,b:2 --worker-index N``; returns it."""
    if index is None:
        raise DistributedError("--workers needs --worker-index N (0 is the chief)")
    config = tf_config(workers.split(","), index)
    os.environ["TF_CONFIG"] = json.dumps(config)
    return config


def cluster() -> Cluster:
    """This process's :class:`Cluster` from ``TF_CONFIG`` (one worker when it is unset)."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return Cluster()
    try:
        config = json.loads(text)
        workers = config.get("cluster", {}).get("worker", [])
        if config.get("cluster", {}).get("chief"):
            raise DistributedError("TF_CONFIG with a separate 'chief' task is not supported: list every machine as a worker")
        task = config.get("task", {})
        if task.get("type", "worker") != "worker":
            raise DistributedError(f"TF_CONFIG task type {task.get('type')!r} is not supported (only 'worker')")
        index = int(task.get("index", 0))
    except (ValueError, TypeError, AttributeError):
        raise DistributedError("TF_CONFIG is not valid JSON of the form "
                               '{"cluster": {"worker": [...]}, "task": {"type": "worker", "index": N}}') from None
    if not workers or not 0 <= index < len(workers):
        raise DistributedError(f"TF_CONFIG: task index {index} is not one of its {len(workers)} worker(s)")
    return Cluster(len(workers), index)


def strategy():
    """The process's MultiWorkerMirroredStrategy (created once; None without a
    multi-worker ``TF_CONFIG``). Call it before any other TensorFlow operation."""
    global _STRATEGY
    if _STRATEGY is None and cluster().multi_worker:
        import tensorflow as tf

        try:
            _STRATEGY = tf.distribute.MultiWorkerMirroredStrategy()
        except (RuntimeError, ValueError) as error:
            raise DistributedError(f"cannot start the multi-worker strategy ({str(error).splitlines()[0]}); "
                                   "it must be created before TensorFlow runs anything in the process") from None
    return _STRATEGY


def write_dir(directory: str | os.PathLike, current: Cluster | None = None) -> Path:
    """Where this worker writes ``directory``'s files: the directory itself on the chief,
    a fresh temporary folder on the other workers (remove it with :func:`cleanup`)."""
    current = current or cluster()
    if current.is_chief:
        return Path(directory)
    return Path(tempfile.mkdtemp(prefix=f"faceapp-worker{current.index}-"))


def cleanup(directory: str | os.PathLike, current: Cluster | None = None) -> None:
    """Remove a non-chief worker's temporary folder (nothing on the chief)."""
    current = current or cluster()
    if not current.is_chief:
        shutil.rmtree(directory, ignore_errors=True)


def weights_digest(model) -> str:
    """SHA-256 of a model's weights (shapes and bytes in order): equal on every worker."""
    import hashlib

    import numpy as np

    digest = hashlib.sha256()
    for weight in model.get_weights():
        array = np.ascontiguousarray(weight)
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()
