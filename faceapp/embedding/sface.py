"""The SFace embedding network (OpenCV Zoo's ``face_recognition_sface_2021dec``) in Keras.

SFace is a MobileNet-style CNN: a 3x3 stem, 13 depthwise-separable blocks, a global
linear projection of the last 7x7x1024 feature map to 128 numbers. Every convolution is
followed by batch normalisation and a PReLU.

Input: float32 ``(N, 112, 112, 3)``, **RGB**, pixel values in ``[0, 255]``, a face aligned
to the ArcFace 5-point template (see :mod:`faceapp.vision.alignment`). The ``(x - 127.5) / 128``
scaling is part of the model.
Output: float32 ``(N, 128)``, *not* normalised (callers L2-normalise).

Two builders share one layer list:

* :func:`build_sface` -- the trainable model, with BatchNormalization layers. Its weights
  are what ``models/sface_2021dec.weights.h5`` stores.
* :func:`build_inference_sface` -- the same network with every batch norm folded into
  the preceding convolution or dense layer (exact up to float rounding); this is what
  the app runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Bump when the layer graph changes, so cached conversions are rebuilt.
ARCHITECTURE_VERSION = 2
EMBEDDING_DIM = 128
INPUT_SIZE = 112
CONV_BN_EPSILON = 1e-3
HEAD_BN_EPSILON = 2e-5


def to_model_input(faces_bgr: np.ndarray) -> np.ndarray:
    """Aligned BGR uint8 crops ``(N, 112, 112, 3)`` -> the network's input: RGB float32
    in [0, 255] (the scaling is inside the model). Used by inference and training alike."""
    return np.ascontiguousarray(np.asarray(faces_bgr)[..., ::-1], dtype=np.float32)


@dataclass(frozen=True)
class Block:
    """One depthwise-separable block: 3x3 depthwise (``stride``), then 1x1 to ``filters``."""

    index: int
    filters: int
    stride: int


# conv_2 ... conv_14 of the original graph; conv_1 is the 32-channel stem.
BLOCKS: tuple[Block, ...] = (
    Block(2, 64, 1),
    Block(3, 128, 2),
    Block(4, 128, 1),
    Block(5, 256, 2),
    Block(6, 256, 1),
    Block(7, 512, 2),
    Block(8, 512, 1),
    Block(9, 512, 1),
    Block(10, 512, 1),
    Block(11, 512, 1),
    Block(12, 512, 1),
    Block(13, 1024, 2),
    Block(14, 1024, 1),
)
STEM_FILTERS = 32


def _conv_unit(x, name: str, *, filters: int | None, kernel: int, stride: int, fused: bool, depthwise: bool):
    """Conv (or depthwise conv) -> [BN] -> PReLU, padded as the original (symmetric 1)."""
    import keras
    from keras import layers

    if kernel == 3 and stride == 2:
        # ONNX pads 1 on every side; Keras "same" would pad (0, 1) for stride 2.
        x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
        padding = "valid"
    else:
        padding = "same"
    if depthwise:
        x = layers.DepthwiseConv2D(
            kernel, strides=stride, padding=padding, use_bias=fused, name=f"{name}_conv2d"
        )(x)
    else:
        x = layers.Conv2D(
            filters, kernel, strides=stride, padding=padding, use_bias=fused, name=f"{name}_conv2d"
        )(x)
    if not fused:
        x = layers.BatchNormalization(epsilon=CONV_BN_EPSILON, momentum=0.9, name=f"{name}_batchnorm")(x)
    return layers.PReLU(shared_axes=[1, 2], alpha_initializer=keras.initializers.Constant(0.25), name=f"{name}_relu")(x)


def _build(fused: bool, dropout: float = 0.0, dtype_policy: str | None = None):
    import keras
    from keras import layers

    if dtype_policy is not None:
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(dtype_policy)
        try:
            return _build(fused, dropout)
        finally:
            keras.config.set_dtype_policy(previous)
    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), name="face_rgb")
    x = layers.Rescaling(1.0 / 128.0, offset=-127.5 / 128.0, name="scale")(inputs)
    x = _conv_unit(x, "conv_1", filters=STEM_FILTERS, kernel=3, stride=1, fused=fused, depthwise=False)
    for block in BLOCKS:
        x = _conv_unit(x, f"conv_{block.index}_dw", filters=None, kernel=3, stride=block.stride, fused=fused, depthwise=True)
        x = _conv_unit(x, f"conv_{block.index}", filters=block.filters, kernel=1, stride=1, fused=fused, depthwise=False)
    if not fused:
        x = layers.BatchNormalization(epsilon=HEAD_BN_EPSILON, momentum=0.9, name="bn1")(x)
        if dropout:
            x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(EMBEDDING_DIM, name="pre_fc1")(x)
    if not fused:
        x = layers.BatchNormalization(epsilon=HEAD_BN_EPSILON, momentum=0.9, name="fc1")(x)
    x = layers.Activation("linear", dtype="float32", name="embedding")(x)  # float32 out under mixed precision
    return keras.Model(inputs, x, name="sface_inference" if fused else "sface")


def build_sface(dropout: float = 0.4):
    """The trainable SFace model (with batch norms); ``dropout`` before the projection."""
    return _build(fused=False, dropout=dropout)


def _bn_scale_shift(layer) -> tuple[np.ndarray, np.ndarray]:
    gamma, beta, mean, var = (np.asarray(w, np.float64) for w in layer.get_weights())
    scale = gamma / np.sqrt(var + layer.epsilon)
    return scale, beta - mean * scale


def build_inference_sface(trained, dtype_policy: str | None = None):
    """Fold ``trained``'s batch norms into its convolutions; returns a new Keras model.

    ``trained`` is a model from :func:`build_sface` (any dropout). The folded model
    computes the same function in inference mode, with about half the layers.
    ``dtype_policy`` (e.g. "mixed_float16") sets its compute precision; output is float32.
    """
    fused = _build(fused=True, dtype_policy=dtype_policy)
    for layer in fused.layers:
        name = layer.name
        if name.endswith("_conv2d"):
            unit = name[: -len("_conv2d")]
            (kernel,) = trained.get_layer(name).get_weights()
            scale, shift = _bn_scale_shift(trained.get_layer(f"{unit}_batchnorm"))
            if "_dw" in unit:  # depthwise kernel (kh, kw, C, 1): scale per input channel
                kernel = kernel * scale[None, None, :, None]
            else:  # (kh, kw, in, out): scale per output channel
                kernel = kernel * scale[None, None, None, :]
            layer.set_weights([kernel.astype(np.float32), shift.astype(np.float32)])
        elif name.endswith("_relu"):
            layer.set_weights(trained.get_layer(name).get_weights())
        elif name == "pre_fc1":
            weight, bias = (np.asarray(w, np.float64) for w in trained.get_layer(name).get_weights())
            # bn1 acts per channel on the 7x7x1024 map, i.e. on flattened rows c + 1024 * k.
            scale1, shift1 = _bn_scale_shift(trained.get_layer("bn1"))
            channels = scale1.shape[0]
            repeats = weight.shape[0] // channels
            scale1 = np.tile(scale1, repeats)
            shift1 = np.tile(shift1, repeats)
            bias = bias + shift1 @ weight
            weight = weight * scale1[:, None]
            scale2, shift2 = _bn_scale_shift(trained.get_layer("fc1"))
            layer.set_weights([(weight * scale2).astype(np.float32), (bias * scale2 + shift2).astype(np.float32)])
    return fused
