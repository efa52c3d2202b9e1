"""MiniFASNet (Minivision's passive anti-spoofing networks) as Keras models.

MiniFASNet is a pruned MobileFaceNet. Every "conv block" is a bias-free convolution,
a batch norm and a per-channel PReLU; a "linear block" the same without the PReLU.

* stem: a 3x3 conv block, stride 2 (80 -> 40), then a 3x3 depthwise conv block;
* three stages, each a *downsampling unit* (1x1 conv block to an expansion width, 3x3
  depthwise conv block with stride 2, 1x1 linear block to the stage width; no shortcut:
  40 -> 20 -> 10 -> 5) followed by *residual units* (the same with stride 1, added to
  their input). In ``MiniFASNetV1SE`` the last residual unit of each stage scales its
  branch by a squeeze-and-excitation gate before the addition (global mean, 1x1 conv,
  batch norm, ReLU, 1x1 conv, batch norm, sigmoid);
* head: a 1x1 conv block to 512 channels, a linear 5x5 depthwise block (5x5 -> 1x1),
  flatten, a bias-free dense layer to 128, a batch norm, (dropout, inactive at
  inference) and a bias-free dense layer to the 3 class logits.

Stride-2 convolutions pad one pixel on every side, as PyTorch does (Keras' ``"same"``
would pad only bottom/right). Batch norms use PyTorch's epsilon, 1e-5, and their running
statistics (inference mode).

Input: float32 ``(N, 80, 80, 3)``, **BGR**, values 0..255, no normalisation (the authors'
``ToTensor`` only transposes to NCHW). Output: float32 ``(N, 3)`` logits; softmax class 1
is "real face", classes 0 and 2 are spoofs.

The layer widths are fixed by the tensor shapes of each released state dict;
:func:`spec_from_shapes` reads them and :data:`MINIFASNET_V2` / :data:`MINIFASNET_V1SE`
are the result for the two files. Keras layer names are the PyTorch module paths with
``.`` replaced by ``__`` (``conv_3.model.0.conv_dw.bn`` -> ``conv_3__model__0__conv_dw__bn``),
so ``tools/convert_minifasnet.py`` maps the weights by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: Bump when the layer graph changes, so cached LiteRT conversions are rebuilt.
ARCHITECTURE_VERSION = 1
INPUT_SIZE = 80
BN_EPSILON = 1e-5  # PyTorch's default
#: PyTorch module names of each stage: (downsampling unit, sequence of residual units).
STAGE_NAMES = (("conv_23", "conv_3"), ("conv_34", "conv_4"), ("conv_45", "conv_5"))


@dataclass(frozen=True)
class Unit:
    """A residual unit: its expansion width, and its squeeze width (0: no SE gate)."""

    expand: int
    squeeze: int = 0


@dataclass(frozen=True)
class Stage:
    """A downsampling unit (``expand`` -> ``width`` channels) and its residual units."""

    expand: int
    width: int
    units: tuple[Unit, ...]


@dataclass(frozen=True)
class MiniFASNetSpec:
    """Every width of one MiniFASNet variant."""

    name: str
    stem: int
    stages: tuple[Stage, ...]
    head: int
    head_kernel: int
    embedding: int
    classes: int


def _units(*expands: int, squeeze_last: int = 0) -> tuple[Unit, ...]:
    last = len(expands) - 1
    return tuple(Unit(e, squeeze_last if i == last else 0) for i, e in enumerate(expands))


MINIFASNET_V2 = MiniFASNetSpec(
    "MiniFASNetV2", 32,
    (Stage(103, 64, _units(13, 13, 13, 13)),
     Stage(231, 128, _units(231, 52, 26, 77, 26, 26)),
     Stage(308, 128, _units(26, 26))),
    head=512, head_kernel=5, embedding=128, classes=3,
)
MINIFASNET_V1SE = MiniFASNetSpec(
    "MiniFASNetV1SE", 32,
    (Stage(103, 64, _units(13, 26, 13, 52, squeeze_last=16)),
     Stage(231, 128, _units(154, 52, 26, 52, 26, 26, squeeze_last=32)),
     Stage(308, 128, _units(26, 26, squeeze_last=32))),
    head=512, head_kernel=5, embedding=128, classes=3,
)


def spec_from_shapes(name: str, shapes: Mapping[str, tuple[int, ...]]) -> MiniFASNetSpec:
    """The spec of a state dict, from its tensor shapes (keys without the ``module.``
    prefix, PyTorch layouts: conv ``(out, in/groups, kh, kw)``, linear ``(out, in)``)."""

    def out(key: str) -> int:
        return int(shapes[f"{key}.weight"][0])

    stages = []
    for down, residual in STAGE_NAMES:
        units = []
        while f"{residual}.model.{len(units)}.conv.conv.weight" in shapes:
            prefix = f"{residual}.model.{len(units)}"
            squeeze = out(f"{prefix}.se_module.fc1") if f"{prefix}.se_module.fc1.weight" in shapes else 0
            units.append(Unit(out(f"{prefix}.conv.conv"), squeeze))
        stages.append(Stage(out(f"{down}.conv.conv"), out(f"{down}.project.conv"), tuple(units)))
    return MiniFASNetSpec(
        name, out("conv1.conv"), tuple(stages), out("conv_6_sep.conv"),
        int(shapes["conv_6_dw.conv.weight"][2]), out("linear"), out("prob"),
    )


def layer_name(torch_path: str) -> str:
    """The Keras layer name of a PyTorch module path (``.`` -> ``__``)."""
    return torch_path.replace(".", "__")


def torch_path(keras_name: str) -> str:
    """The PyTorch module path of a Keras layer name (the inverse of :func:`layer_name`)."""
    return keras_name.replace("__", ".")


def build_minifasnet(spec: MiniFASNetSpec):
    """The Keras model of ``spec`` (see the module docstring): BGR ``(N, 80, 80, 3)`` ->
    ``(N, classes)`` logits. Weights are left at their initial values."""
    import keras
    from keras import layers

    def conv(x, path: str, filters: int | None, kernel: int = 1, stride: int = 1, prelu: bool = True):
        """A conv block (``prelu``) or linear block at ``path``; ``filters`` None: depthwise."""
        if stride != 1:
            x = layers.ZeroPadding2D(kernel // 2, name=layer_name(f"{path}.pad"))(x)
        padding = "valid" if stride != 1 else "same"  # stride 1: "same" pads 1 on every side, as PyTorch
        if filters is None:
            x = layers.DepthwiseConv2D(kernel, stride, padding, use_bias=False, name=layer_name(f"{path}.conv"))(x)
        else:
            x = layers.Conv2D(filters, kernel, stride, padding, use_bias=False, name=layer_name(f"{path}.conv"))(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=layer_name(f"{path}.bn"))(x)
        return layers.PReLU(shared_axes=[1, 2], name=layer_name(f"{path}.prelu"))(x) if prelu else x

    def squeeze_excite(x, path: str, squeeze: int, width: int):
        gate = layers.GlobalAveragePooling2D(keepdims=True, name=layer_name(f"{path}.avg_pool"))(x)
        gate = layers.Conv2D(squeeze, 1, use_bias=False, name=layer_name(f"{path}.fc1"))(gate)
        gate = layers.BatchNormalization(epsilon=BN_EPSILON, name=layer_name(f"{path}.bn1"))(gate)
        gate = layers.ReLU(name=layer_name(f"{path}.relu"))(gate)
        gate = layers.Conv2D(width, 1, use_bias=False, name=layer_name(f"{path}.fc2"))(gate)
        gate = layers.BatchNormalization(epsilon=BN_EPSILON, name=layer_name(f"{path}.bn2"))(gate)
        gate = layers.Activation("sigmoid", name=layer_name(f"{path}.sigmoid"))(gate)
        return layers.Multiply(name=layer_name(f"{path}.scale"))([x, gate])

    def unit(x, path: str, expand: int, width: int, stride: int):
        x = conv(x, f"{path}.conv", expand)
        x = conv(x, f"{path}.conv_dw", None, 3, stride)
        return conv(x, f"{path}.project", width, prelu=False)

    image = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), name="image")
    x = conv(image, "conv1", spec.stem, 3, 2)
    x = conv(x, "conv2_dw", None, 3)
    for (down, residual), stage in zip(STAGE_NAMES, spec.stages, strict=True):
        x = unit(x, down, stage.expand, stage.width, 2)
        for index, block in enumerate(stage.units):
            path = f"{residual}.model.{index}"
            branch = unit(x, path, block.expand, stage.width, 1)
            if block.squeeze:
                branch = squeeze_excite(branch, f"{path}.se_module", block.squeeze, stage.width)
            x = layers.Add(name=layer_name(f"{path}.add"))([x, branch])
    x = conv(x, "conv_6_sep", spec.head)
    x = layers.DepthwiseConv2D(spec.head_kernel, use_bias=False, name=layer_name("conv_6_dw.conv"))(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=layer_name("conv_6_dw.bn"))(x)
    x = layers.Flatten(name="conv_6_flatten")(x)
    x = layers.Dense(spec.embedding, use_bias=False, name="linear")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name="bn")(x)
    logits = layers.Dense(spec.classes, use_bias=False, name="prob")(x)
    return keras.Model(image, logits, name=spec.name)
