"""dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1``) in Keras.

Davis King's 29-convolution ResNet (dlib's ``anet_type``, see
``examples/dnn_face_recognition_ex.cpp`` in dlib), written here layer by layer:

* stem: 7x7 convolution to 32 channels, stride 2, no padding (150 -> 72); ReLU; 3x3 max
  pool, stride 2, no padding (72 -> 35);
* 14 residual units of two 3x3 convolutions (each followed by dlib's ``affine`` layer,
  the first by a ReLU too), the unit's input added, then a ReLU: 3 units of 32 channels
  at 35x35; then 64 (4 units), 128 (3), 256 (3) and 256 (1), where the first unit of each
  group is a *down* unit: its first convolution has stride 2 and no padding, and its
  shortcut is a 2x2 average pool, stride 2 (35 -> 17 -> 8 -> 4 -> 2);
* a global average pool and a bias-free dense projection to 128 numbers.

Two details are dlib's own and kept exactly: dlib adds tensors of different shapes by
zero-padding both to the larger size in every dimension (``tt::add``), which happens in
every down unit (the shortcut has fewer channels, and at 8 -> 4 and 4 -> 2 the strided
branch is one pixel smaller than the pooled shortcut: 3x3 vs 4x4, 1x1 vs 2x2; the padding
goes at the bottom and the right); and stride-1 convolutions pad 1 pixel on every side,
strided ones none. The ``affine`` layers (dlib's batch norm at inference:
``x * gamma + beta`` per channel) are folded into the convolutions before them by
``tools/convert_dlib_resnet.py``.

Input: float32 ``(N, 150, 150, 3)``, **RGB**, values 0..255, a face chip cut as
``dlib.get_face_chip`` cuts it (see :mod:`faceapp.vision.dlib_chip`: 5 landmarks,
padding 0.25). dlib's input scaling, ``(x - mean) / 256`` with the per-channel mean colour
:data:`MEAN_RGB` of the file, is part of the model.
Output: float32 ``(N, 128)``, *not* normalised: dlib compares these descriptors by
Euclidean distance (same person below 0.6); callers that use cosine similarity
L2-normalise them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Bump when the layer graph changes, so cached conversions are rebuilt.
ARCHITECTURE_VERSION = 1
INPUT_SIZE = 150
EMBEDDING_DIM = 128
STEM_FILTERS = 32
#: The input layer's mean colour in dlib's file (float32 122.782, 117.001, 104.298).
MEAN_RGB = (122.78199768066406, 117.0009994506836, 104.2979965209961)
INPUT_DIVISOR = 256.0
WEIGHTS_FILE = "dlib_resnet_v1.weights.h5"
WEIGHTS_SHA256 = "39e4e60a0dabe8cf6ca53f8083833b2c4b5debb898f0686b2dbb3a2c99ee8e93"
SOURCE_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"  # dlib's .dat (tools/convert_dlib_resnet.py)


@dataclass(frozen=True)
class Unit:
    """One residual unit: its width, and whether it halves the resolution."""

    filters: int
    down: bool = False


#: The 14 units in order (dlib's alevel4, alevel3, ..., alevel0).
UNITS: tuple[Unit, ...] = (
    *(Unit(32),) * 3,
    Unit(64, True), *(Unit(64),) * 3,
    Unit(128, True), *(Unit(128),) * 2,
    Unit(256, True), *(Unit(256),) * 2,
    Unit(256, True),
)


def to_model_input(chips_bgr: np.ndarray) -> np.ndarray:
    """Face chips, BGR uint8 ``(N, 150, 150, 3)`` (as the app keeps images) -> the
    network's input: RGB float32 in [0, 255] (the scaling is inside the model)."""
    return np.ascontiguousarray(np.asarray(chips_bgr)[..., ::-1], dtype=np.float32)


def conv_layer_names() -> list[str]:
    """The Keras names of the 29 convolutions, in dlib's order (input first)."""
    names = ["stem_conv"]
    for index in range(1, len(UNITS) + 1):
        names += [f"unit{index}_conv1", f"unit{index}_conv2"]
    return names


def _zero_pad_to(x, shape: tuple[int, int, int], name: str):
    """``x`` (N, H, W, C) zero-padded at the bottom, right and last channels to ``shape``
    (H, W, C), as dlib's ``add_prev`` does to the smaller operand."""
    from keras import layers, ops

    height, width, channels = x.shape[1:]
    if (height, width, channels) == shape:
        return x
    pads = ((0, 0), (0, shape[0] - height), (0, shape[1] - width), (0, shape[2] - channels))
    return layers.Lambda(lambda tensor: ops.pad(tensor, pads), output_shape=shape, name=name)(x)


def _conv(x, filters: int, size: int, stride: int, name: str):
    """dlib's ``con``: padding size // 2 on every side at stride 1, none when strided
    (Keras' "same" equals it at stride 1 for odd sizes)."""
    from keras import layers

    padding = "same" if stride == 1 else "valid"
    return layers.Conv2D(filters, size, strides=stride, padding=padding, name=name)(x)


def build_dlib_resnet():
    """The Keras network (weights at their initial values; the convolutions carry dlib's
    ``affine`` layers folded in, so each has a bias): RGB ``(N, 150, 150, 3)`` in [0, 255]
    -> raw ``(N, 128)``."""
    import keras
    from keras import layers

    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), name="chip_rgb")
    # (x - mean) / sqrt(256**2): dlib's (pixel - mean) / 256, rounded the same way.
    x = layers.Normalization(mean=list(MEAN_RGB), variance=[INPUT_DIVISOR**2] * 3, name="scale")(inputs)
    x = _conv(x, STEM_FILTERS, 7, 2, "stem_conv")
    x = layers.ReLU(name="stem_relu")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="valid", name="stem_pool")(x)
    for index, unit in enumerate(UNITS, start=1):
        name = f"unit{index}"
        branch = _conv(x, unit.filters, 3, 2 if unit.down else 1, f"{name}_conv1")
        branch = layers.ReLU(name=f"{name}_relu1")(branch)
        branch = _conv(branch, unit.filters, 3, 1, f"{name}_conv2")
        shortcut = layers.AveragePooling2D(2, strides=2, padding="valid", name=f"{name}_pool")(x) if unit.down else x
        shape = tuple(max(a, b) for a, b in zip(branch.shape[1:], shortcut.shape[1:], strict=True))
        branch = _zero_pad_to(branch, shape, f"{name}_pad_branch")
        shortcut = _zero_pad_to(shortcut, shape, f"{name}_pad_shortcut")
        x = layers.Add(name=f"{name}_add")([shortcut, branch])
        x = layers.ReLU(name=f"{name}_relu")(x)
    x = layers.GlobalAveragePooling2D(name="global_pool")(x)
    x = layers.Dense(EMBEDDING_DIM, use_bias=False, name="embedding")(x)
    return keras.Model(inputs, x, name="dlib_resnet_v1")


def weights_path(directory: str | os.PathLike | None = None) -> Path:
    """The verified Keras weights: the model directory's copy, else the shipped one."""
    from faceapp.checksums import verified_file
    from faceapp.errors import ModelError
    from faceapp.paths import DEFAULT_MODEL_DIR, model_dir

    for root in (model_dir(directory), DEFAULT_MODEL_DIR):
        candidate = root / WEIGHTS_FILE
        if candidate.exists():
            return verified_file(candidate, WEIGHTS_SHA256, "dlib ResNet weights")
    raise ModelError(f"dlib ResNet weights are missing: {DEFAULT_MODEL_DIR / WEIGHTS_FILE}")


def load_dlib_resnet(path: Path | None = None):
    """The Keras network carrying the weights at ``path`` (default: :func:`weights_path`)."""
    from faceapp.accel.device import import_tensorflow
    from faceapp.accel.keras_run import load_weights

    path = weights_path() if path is None else path
    import_tensorflow()  # before Keras imports it, so that its CUDA-probing noise stays hidden
    return load_weights(build_dlib_resnet(), path, "dlib ResNet weights")
