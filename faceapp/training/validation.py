"""What the training loop measures on the validation people, and its per-epoch callbacks.

:func:`embed_faces` embeds BGR uint8 ``(N, 112, 112, 3)`` crops into unit float32
``(N, 128)`` rows; :func:`verify` scores fixed pairs of them (cosine) into a
:class:`Verification` (k-fold accuracy, ROC AUC, threshold, the scores). After every
epoch the ``VerificationCallback`` (:func:`verification_callback_class`) adds
``val_verification_accuracy`` and ``val_verification_auc`` (:data:`MONITOR`) to the logs
and keeps the best backbone's weights. Also here: the TensorBoard callback and the
history plot (``history.png``). Used by :mod:`faceapp.training.loop` and
:mod:`faceapp.training.report`.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceapp.embedding.sface import to_model_input
from faceapp.training.checkpoints import save_weights_atomically
from faceapp.training.data import FaceSet

logger = logging.getLogger(__name__)

MONITOR = "val_verification_auc"
VAL_FOLDS = 5


@dataclass(frozen=True)
class Verification:
    """Verification figures of one set of pairs: k-fold accuracy (mean over
    :data:`VAL_FOLDS` folds), ROC AUC, the best single threshold, and the scores."""

    accuracy: float
    auc: float
    threshold: float
    scores: np.ndarray
    same: np.ndarray

    def to_json(self) -> dict[str, float]:
        return {"accuracy": round(self.accuracy, 5), "auc": round(self.auc, 5), "threshold": round(self.threshold, 5)}


# --------------------------------------------------------------------------- measuring
def embed_faces(backbone, faces: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """Unit embeddings float32 ``(N, 128)`` of BGR uint8 ``(N, 112, 112, 3)`` faces
    (inference mode: batch norms use their moving statistics)."""
    rows = []
    for start in range(0, len(faces), batch_size):
        batch = to_model_input(faces[start : start + batch_size])
        rows.append(np.asarray(backbone(batch, training=False), np.float32))
    out = np.concatenate(rows) if rows else np.zeros((0, 128), np.float32)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def verify(embeddings: np.ndarray, left: np.ndarray, right: np.ndarray, same: np.ndarray) -> Verification:
    """Score pairs of unit embeddings (cosine) and measure them."""
    from faceapp.evaluation.metrics import best_threshold, kfold_accuracy, roc

    scores = np.clip(np.einsum("ij,ij->i", embeddings[left], embeddings[right]).astype(np.float64), -1.0, 1.0)
    folds = np.arange(len(scores)) % VAL_FOLDS
    kfold = kfold_accuracy(scores, same, folds)
    threshold, _ = best_threshold(scores, same)
    return Verification(float(kfold.mean), float(roc(scores, same).auc), float(threshold), scores, same)


# --------------------------------------------------------------------------- outputs
def plot_history(history: dict[str, list[float]], before: Verification, path: Path) -> Path:
    """Loss, head accuracy and validation verification per epoch, as one PNG."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10.0, 3.6), dpi=100)
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    axes = figure.subplots(1, 3)
    axes[0].plot(epochs, history.get("loss", []), marker="o")
    axes[0].set_title("head loss")
    axes[1].plot(epochs, history.get("accuracy", []), marker="o")
    axes[1].set_title("head accuracy (train)")
    all_epochs = np.concatenate([[0], epochs])
    axes[2].plot(all_epochs, [before.accuracy] + list(history.get("val_verification_accuracy", [])), marker="o", label="accuracy")
    axes[2].plot(all_epochs, [before.auc] + list(history.get(MONITOR, [])), marker="o", label="AUC")
    axes[2].set_title("validation verification")
    axes[2].legend()
    for axis in axes:
        axis.set_xlabel("epoch")
        axis.grid(True, alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


@functools.cache
def _tensorboard_installed() -> bool:
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        logger.warning("TensorBoard logs skipped: the tensorboard package is not installed (history.csv is written)")
        return False
    return True


def tensorboard_callback(log_dir: Path):
    """Keras' TensorBoard callback, or None (logged) when the ``tensorboard`` package,
    which ``tf.summary`` needs, is not installed (``pip install tensorboard``)."""
    import keras

    if not _tensorboard_installed():
        return None
    return keras.callbacks.TensorBoard(log_dir=str(log_dir), write_graph=False, profile_batch=0)


# --------------------------------------------------------------------------- callback
def verification_callback_class():
    """The ``VerificationCallback`` class (built on first use: Keras is imported lazily)."""
    import keras

    class VerificationCallback(keras.callbacks.Callback):
        """After each epoch: verification on the validation pairs, into the logs; keeps
        the best backbone weights (by AUC, then accuracy) in ``checkpoint``."""

        def __init__(self, backbone, faces: FaceSet, pairs, checkpoint: Path, before: Verification, on_best=None):
            super().__init__()
            self.on_best = on_best
            self.backbone = backbone
            self.faces = faces
            self.pairs = pairs
            self.checkpoint = checkpoint
            self.best = before
            self.best_epoch = 0
            self.epoch_seconds: list[float] = []
            self._started = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self._started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.epoch_seconds.append(time.perf_counter() - self._started)
            result = verify(embed_faces(self.backbone, self.faces.images), *self.pairs)
            if logs is not None:
                logs["val_verification_accuracy"] = result.accuracy
                logs[MONITOR] = result.auc
            if (result.auc, result.accuracy) > (self.best.auc, self.best.accuracy):
                self.best, self.best_epoch = result, epoch + 1
                save_weights_atomically(self.backbone, self.checkpoint)
                if self.on_best is not None:
                    self.on_best()
            logger.info("epoch %d: validation verification accuracy %.4f, AUC %.4f", epoch + 1, result.accuracy, result.auc)

    return VerificationCallback
