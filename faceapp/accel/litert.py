"""Keras models on the CPU through LiteRT (TensorFlow's on-device runtime) with XNNPACK.

:func:`cached_interpreter` converts a Keras model to a float32 flatbuffer once (cached in
the user cache directory under a name that the caller derives from the weights' checksum
and the architecture version) and opens it; a damaged cache file is converted again.
:class:`Runner` runs one interpreter on inputs whose shape may change between calls
(resizing the input tensor only when it does).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from faceapp.stdio import native_stderr_silenced

logger = logging.getLogger(__name__)


def litert_available() -> bool:
    """Whether TensorFlow's LiteRT interpreter (``ai-edge-litert``) can be imported."""
    import importlib.util

    return importlib.util.find_spec("ai_edge_litert") is not None


def convert_to_litert(keras_model, path: Path, what: str = "model") -> None:
    """Convert ``keras_model`` to a float32 LiteRT flatbuffer at ``path`` (atomically)."""
    from faceapp.accel.device import import_tensorflow

    tf = import_tensorflow()
    logger.info("converting the %s for LiteRT (once per model): %s", what, path)
    # The converter prints its signature on stdout, and native notes on stderr.
    with contextlib.redirect_stdout(io.StringIO()), native_stderr_silenced():
        flatbuffer = tf.lite.TFLiteConverter.from_keras_model(keras_model).convert()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
        handle.write(flatbuffer)
    os.replace(handle.name, path)


def cached_interpreter(path: Path, make_model: Callable[[], object], what: str = "model", *,
                       threads: int | None = None):
    """A LiteRT interpreter of the flatbuffer at ``path``, converted first from
    ``make_model()`` (a Keras model) when it is missing or unreadable."""
    from ai_edge_litert.interpreter import Interpreter

    threads = threads or os.cpu_count() or 1
    if not path.exists():
        convert_to_litert(make_model(), path, what)
    try:
        with native_stderr_silenced():
            return Interpreter(model_path=str(path), num_threads=threads)
    except (ValueError, RuntimeError) as error:  # a damaged cache file: convert once more
        logger.warning("cached LiteRT %s %s unusable (%s); converting again", what, path, error)
        convert_to_litert(make_model(), path, what)
        with native_stderr_silenced():
            return Interpreter(model_path=str(path), num_threads=threads)


class Runner:
    """Runs an interpreter with one input: ``run(x)`` -> its outputs (copies), in the
    flatbuffer's output order. The input tensor is resized only when ``x``'s shape
    changes. Not thread-safe."""

    def __init__(self, interpreter):
        self._interpreter = interpreter
        self._input = interpreter.get_input_details()[0]["index"]
        self._outputs = [d["index"] for d in interpreter.get_output_details()]
        self._shape: tuple[int, ...] | None = None

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        if batch.shape != self._shape:
            self._interpreter.resize_tensor_input(self._input, list(batch.shape))
            with native_stderr_silenced():  # the delegate is applied (and announced) here
                self._interpreter.allocate_tensors()
            self._shape = batch.shape
        self._interpreter.set_tensor(self._input, batch)
        self._interpreter.invoke()
        return [self._interpreter.get_tensor(index).copy() for index in self._outputs]
