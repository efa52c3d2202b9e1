"""Keras models in TensorFlow, the way every network of the app runs there (the GPU's
path, and the CPU's when LiteRT is not used): weights loaded with one clear error, and
one ``tf.function`` per model traced for its input shape (``None`` where it varies).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from faceapp.errors import ModelError


def load_weights(model, path: Path, what: str):
    """``model`` with the Keras weights at ``path``; a damaged file is a one-line ModelError."""
    try:
        model.load_weights(path)
    except Exception as error:  # noqa: BLE001  (h5py/Keras raise many kinds for a damaged file)
        raise ModelError(f"{what} {path} cannot be loaded: {error}") from None
    return model


def tf_runner(model, tf_device: str, shape: Sequence[int | None]) -> Callable[[np.ndarray], object]:
    """``run(batch)``: ``model`` on a float32 batch of ``shape`` on ``tf_device``, traced
    once; returns a numpy array, or a list of them for a model with several outputs."""
    from faceapp.accel.device import import_tensorflow

    tf = import_tensorflow()

    @tf.function(input_signature=[tf.TensorSpec(list(shape), tf.float32)], reduce_retracing=True)
    def forward(batch):
        return model(batch, training=False)

    def run(batch: np.ndarray):
        with tf.device(tf_device):
            out = forward(tf.constant(batch))
        return [o.numpy() for o in out] if isinstance(out, (list, tuple)) else out.numpy()

    run.keras_model = model  # for programs that run it on the device (recognition.frame_program)
    return run
