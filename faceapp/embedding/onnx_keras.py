"""The ``.keras`` files of converted ONNX models: our own layers, and loading them safely.

:mod:`faceapp.embedding.onnx_graph` converts an ONNX graph into a Keras model made of
Keras' built-in layers (:data:`BUILTIN_LAYERS`) and the few of :func:`layer_classes`;
the model is saved as one full ``.keras`` file (the card's ``weights``).
:func:`load_keras_file` opens it offline, safely: before Keras reads it, its
``config.json`` must name only those layers (whose configuration is literal values,
checked); it is then loaded with ``safe_mode=True`` (no Lambda layers, no pickled code)
and our classes as the only custom objects.
"""

from __future__ import annotations

import functools
import json
import os
import zipfile
from pathlib import Path
from typing import Any

from faceapp.errors import ModelError

#: Keras' built-in layers a converted model may hold (checked before loading one).
BUILTIN_LAYERS = frozenset({
    "InputLayer", "Conv2D", "DepthwiseConv2D", "BatchNormalization", "ReLU", "PReLU", "LeakyReLU", "Activation",
    "ZeroPadding2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "Flatten", "Permute", "Dense",
    "Concatenate",
})
_BINARY = ("add", "sub", "mul", "div")


@functools.cache
def layer_classes() -> dict[str, type]:
    """Our own layers (built once, with Keras imported lazily): elementwise ops with a
    constant or of two tensors, Clip, and a constant-value 2-D pad (MaxPool's)."""
    import keras
    from keras import ops

    def apply(op: str, a, b):
        return {"add": ops.add, "sub": ops.subtract, "mul": ops.multiply, "div": ops.divide}[op](a, b)

    def check_op(op: str) -> str:
        if op not in _BINARY:
            raise ValueError(f"unknown elementwise op {op!r}")
        return op

    class OnnxConstantOp(keras.layers.Layer):
        """``x op c`` (or ``c op x`` when ``constant_first``), ``c`` a stored constant."""

        def __init__(self, op: str, shape, constant_first: bool = False, **kwargs):
            super().__init__(**kwargs)
            self.op, self.shape, self.constant_first = check_op(op), [int(d) for d in shape], bool(constant_first)

        def build(self, input_shape):
            self.constant = self.add_weight(name="constant", shape=tuple(self.shape), initializer="zeros", trainable=False)

        def call(self, x):
            c = ops.cast(self.constant, x.dtype)
            return apply(self.op, c, x) if self.constant_first else apply(self.op, x, c)

        def get_config(self):
            return {**super().get_config(), "op": self.op, "shape": self.shape, "constant_first": self.constant_first}

    class OnnxBinary(keras.layers.Layer):
        """``a op b`` of two tensors (NumPy broadcasting)."""

        def __init__(self, op: str, **kwargs):
            super().__init__(**kwargs)
            self.op = check_op(op)

        def call(self, inputs):
            a, b = inputs
            return apply(self.op, a, b)

        def get_config(self):
            return {**super().get_config(), "op": self.op}

    class OnnxClip(keras.layers.Layer):
        def __init__(self, low: float, high: float, **kwargs):
            super().__init__(**kwargs)
            self.low, self.high = float(low), float(high)

        def call(self, x):
            return ops.clip(x, self.low, self.high)

        def get_config(self):
            return {**super().get_config(), "low": self.low, "high": self.high}

    class OnnxPad2D(keras.layers.Layer):
        """Pad H and W of an NHWC tensor by ``((top, bottom), (left, right))`` with ``value``."""

        def __init__(self, padding, value: float, **kwargs):
            super().__init__(**kwargs)
            self.padding = [[int(v) for v in pair] for pair in padding]
            self.value = float(value)

        def call(self, x):
            return ops.pad(x, [[0, 0], *self.padding, [0, 0]], constant_values=self.value)

        def compute_output_shape(self, shape):
            (t, b), (left, r) = self.padding
            grow = [None if s is None else s + p for s, p in zip(shape[1:3], (t + b, left + r))]
            return (shape[0], *grow, shape[3])

        def get_config(self):
            return {**super().get_config(), "padding": self.padding, "value": self.value}

    return {cls.__name__: cls for cls in (OnnxConstantOp, OnnxBinary, OnnxClip, OnnxPad2D)}


# -- loading --------------------------------------------------------------------------
def _config_layers(config: Any):
    """Every layer config of a functional model's ``config.json`` (nested models too)."""
    if isinstance(config, dict):
        if "class_name" in config and isinstance(config.get("config"), dict):
            yield config
            for layer in config["config"].get("layers", ()) or ():
                yield from _config_layers(layer)
    elif isinstance(config, list):
        for item in config:
            yield from _config_layers(item)


def check_keras_file(path: str | os.PathLike) -> None:
    """ModelError unless ``path`` is a ``.keras`` archive of a functional model made of
    :data:`BUILTIN_LAYERS` and :func:`layer_classes` only."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise ModelError(f"embedding model {path} is not a readable .keras file ({error})") from None
    if not isinstance(config, dict) or config.get("class_name") != "Functional":
        raise ModelError(f"embedding model {path}: not a functional Keras model")
    allowed = BUILTIN_LAYERS | set(layer_classes())
    for layer in list(_config_layers(config))[1:]:
        name = layer.get("class_name")
        module = str(layer.get("module") or "")
        ours = name in layer_classes() and module in ("", __name__, "faceapp.embedding.onnx_graph")
        if name not in allowed or not (ours or module.startswith("keras")):
            raise ModelError(f"embedding model {path}: layer {name!r} ({module}) is not one an ONNX import makes")


def load_keras_file(path: str | os.PathLike):
    """The Keras model of a ``.keras`` file that :func:`convert_graph` wrote (checked, safe mode)."""
    check_keras_file(path)
    import keras

    try:
        return keras.saving.load_model(str(path), custom_objects=layer_classes(), compile=False, safe_mode=True)
    except Exception as error:  # noqa: BLE001 -- Keras/h5py raise many kinds for a damaged file
        raise ModelError(f"embedding model {path} cannot be loaded: {str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__}") from None


def save_keras_file(model, path: str | os.PathLike) -> None:
    model.save(str(path))
