"""Per-epoch training checkpoints and ``--resume``, with ``tf.train.Checkpoint``.

One checkpoint per epoch in ``MODEL_DIR/checkpoints/`` (``ckpt-N.index`` +
``ckpt-N.data-*``) written by ``tf.train.CheckpointManager``; only the newest is kept (the
manager deletes the older one after the index names the new one). It
holds, as one object graph: the training model (backbone and margin head weights, and
whatever seed-generator state its layers track), the optimizer (slots and the iteration counter that
drives the learning-rate schedule), a copy of the best epoch's backbone weights, and a
JSON state string (epoch, history, best validation result and its pair scores, early
stopping counters, config, seed, people). TensorFlow writes the data under temporary
names and only then rewrites the small ``checkpoint`` index file atomically, so the
index always names a complete checkpoint: a ``kill -9`` during a save leaves the previous
one in force (its half-written files are overwritten by the next save of that number).

Why ``tf.train.Checkpoint`` rather than Keras' ``BackupAndRestore``: this training runs
on the TensorFlow backend only; ``Checkpoint`` saves the optimizer and arbitrary extra
variables (the best weights, the state string) in the same atomic unit, while Keras
3's ``BackupAndRestore`` overwrites its weights file in place and writes its epoch
counter to a separate JSON file (a kill during or between the two can leave them
inconsistent) and has no place for the validation state this loop needs to resume.

Randomness: a resumed run reseeds Keras' generators and the training stream with
``seed + 7919 * epoch`` (deterministic, but not bit-identical to an uninterrupted run;
the ``tf.data`` iterator position is not saved).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from faceapp.errors import FaceAppError
from faceapp.training.config import changed_settings

logger = logging.getLogger(__name__)

STATE_VERSION = 1
KEEP = 1


class CheckpointError(FaceAppError):
    """A checkpoint that cannot be resumed (other settings, other people, unreadable)."""


def resume_seed(seed: int, epoch: int) -> int:
    """The seed of the sample stream and Keras' generators after ``epoch`` epochs."""
    return int(seed) + 7919 * int(epoch) if epoch else int(seed)


def save_weights_atomically(model, path: Path) -> None:
    """``model.save_weights(path)`` under a temporary name, then renamed over ``path``."""
    path = Path(path)
    temporary = path.with_name(f".{path.name[: -len('.weights.h5')]}.tmp-{os.getpid()}.weights.h5")
    model.save_weights(temporary)
    os.replace(temporary, path)


def _comparable(config_json: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in config_json.items() if key != "verbose"}


class TrainingCheckpoints:
    """The checkpoint folder of one run: build with the compiled model, then
    :meth:`restore` (if resuming) or :meth:`discard` (a fresh start), and :meth:`save`
    at each epoch end (see :func:`callback`)."""

    def __init__(self, directory: str | os.PathLike, model, optimizer, backbone, identity: dict[str, Any]):
        import tensorflow as tf

        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.backbone = backbone
        self.identity = identity  # config, seed, people: must match to resume
        if not optimizer.built:  # slots must exist before a restore fills them (build it in the strategy's scope)
            optimizer.build(model.trainable_variables)
        self.best_weights = [tf.Variable(w, trainable=False) for w in backbone.get_weights()]
        self.state = tf.Variable("{}", dtype=tf.string, trainable=False)
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, best_backbone=self.best_weights,
                                              state=self.state)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.directory), max_to_keep=KEEP)

    @property
    def latest(self) -> str | None:
        return self.manager.latest_checkpoint

    def discard(self) -> None:
        """A fresh start: forget earlier checkpoints in the folder."""
        stale = [p for p in self.directory.iterdir() if p.name == "checkpoint" or p.name.startswith("ckpt-")]
        if stale:
            logger.warning("not resuming: %d old checkpoint file(s) in %s removed (use --resume to continue them)",
                           len(stale), self.directory)
        (self.directory / "checkpoint").unlink(missing_ok=True)  # the index first: no half-valid state
        for path in stale:
            path.unlink(missing_ok=True)
        self.manager = type(self.manager)(self.checkpoint, str(self.directory), max_to_keep=KEEP)

    def restore(self, directory: str | os.PathLike | None = None) -> dict[str, Any] | None:
        """Load the newest complete checkpoint into the model and optimizer; returns its
        state (``None`` when the folder has none). CheckpointError when it belongs to
        another run (other settings or people). ``directory``: read the newest checkpoint
        of that folder instead of this one's (a non-chief worker resuming from the chief's)."""
        import tensorflow as tf

        path = self.latest if directory is None else tf.train.latest_checkpoint(str(directory))
        if path is None:
            return None

        try:
            status = self.checkpoint.restore(path)
            status.assert_existing_objects_matched()
            state = json.loads(self.state.numpy().decode("utf-8"))
        except (ValueError, AssertionError, OSError) as error:
            raise CheckpointError(f"cannot resume from {path}: {str(error).splitlines()[0]}") from None
        except tf.errors.OpError as error:  # corrupt or foreign files
            raise CheckpointError(f"cannot resume from {path}: {type(error).__name__}") from None
        if state.get("version") != STATE_VERSION:
            raise CheckpointError(f"cannot resume from {path}: it was written by another version of FaceApp "
                                  f"(checkpoint format {state.get('version')!r}, not {STATE_VERSION}); leave --resume out to start again")
        def compared(identity: dict) -> dict:
            return {**{key: identity.get(key) for key in ("seed", "train_people", "val_people")},
                    "config": _comparable(identity.get("config", {}))}

        differences = changed_settings(compared(state.get("identity", {})), compared(self.identity))
        if differences:
            raise CheckpointError(f"cannot resume from {path}: it was made with other settings ({', '.join(differences[:6])}); "
                                  "rerun the original command with --resume, or leave --resume out to start again")
        return state

    def write_best(self, path: Path) -> None:
        """The restored best backbone weights into ``path`` (``.weights.h5``)."""
        current = self.backbone.get_weights()
        self.backbone.set_weights([v.numpy() for v in self.best_weights])
        save_weights_atomically(self.backbone, path)
        self.backbone.set_weights(current)

    def keep_best(self) -> None:
        """Copy the backbone's current weights as the best so far."""
        for variable, value in zip(self.best_weights, self.backbone.get_weights()):
            variable.assign(value)

    def save(self, epoch: int, state: dict[str, Any]) -> str:
        self.state.assign(json.dumps({"version": STATE_VERSION, "epoch": epoch, "identity": self.identity, **state}))
        return self.manager.save(checkpoint_number=epoch)


def _json_floats(values) -> list[float]:
    return [float(v) for v in np.asarray(values, np.float64).ravel()]


def callback(checkpoints: TrainingCheckpoints, verification, early_stopping, history: dict[str, list[float]],
             epoch_seconds: list[float], stopped_flag: list[bool]):
    """A Keras callback saving a checkpoint at every epoch end. It must come after the
    verification and early-stopping callbacks (it records what they decided).
    ``history``/``epoch_seconds`` carry the epochs before a resume and are extended."""
    import keras

    class EpochCheckpoint(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            for key, value in (logs or {}).items():
                history.setdefault(key, []).append(float(value))
            best = verification.best
            stopped = bool(getattr(self.model, "stop_training", False))
            path = checkpoints.save(epoch + 1, {
                "history": history,
                "epoch_seconds": list(epoch_seconds) + list(verification.epoch_seconds),
                "best_epoch": verification.best_epoch,
                "best": {"accuracy": best.accuracy, "auc": best.auc, "threshold": best.threshold,
                         "scores": _json_floats(best.scores), "same": [bool(s) for s in np.asarray(best.same).ravel()]},
                "early_stopping": {"wait": int(early_stopping.wait), "best": None if early_stopping.best is None else float(early_stopping.best),
                                   "best_epoch": int(early_stopping.best_epoch)},
                "stopped": stopped,
            })
            stopped_flag[:] = [stopped]
            logger.info("epoch %d: checkpoint %s", epoch + 1, path)

    return EpochCheckpoint()


def resumable_early_stopping(saved: dict[str, Any] | None, **kwargs):
    """Keras' EarlyStopping that starts from a checkpoint's counters instead of zero."""
    import keras

    class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            if saved:
                self.wait = int(saved.get("wait", 0))
                self.best = saved.get("best")
                self.best_epoch = int(saved.get("best_epoch", 0))

    return ResumableEarlyStopping(**kwargs)
