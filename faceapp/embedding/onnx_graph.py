"""Convert an ONNX graph of common CNN operators into an equivalent Keras 3 model.

Used by ``faceapp model import`` (:mod:`faceapp.embedding.onnx_import`) for ArcFace-style
embedding models that are not SFace: one ``1 x 3 x 112 x 112`` RGB input (pixel values
0..255 as onnxruntime is fed them; whatever scaling the graph does is converted with it),
one ``(1, D)`` embedding out. :func:`convert_graph` walks the graph in topological order
and builds a Keras functional model that runs NHWC inside: ONNX's NCHW kernels are
transposed to Keras' layouts, per-channel constants moved to the last axis, and a
Flatten (or a 2-D Reshape) of a feature map transposes back to NCHW first, so that the
following Gemm's rows line up with ONNX's flatten order.

Operators (:data:`SUPPORTED_OPS`): Conv (groups incl. depthwise, pads, strides,
dilations), BatchNormalization, Relu, PRelu, LeakyRelu, Sigmoid, Clip (Relu6), Add,
Sub, Mul, Div (of two tensors, or a tensor and a constant), MaxPool, AveragePool,
GlobalAveragePool, ReduceMean over H and W, Flatten, Reshape (to 2-D), Gemm, MatMul
(constant right operand), Transpose (NCHW -> NHWC right before a Flatten/Reshape, or the
identity), Identity, Dropout, Concat (channels), Constant. Anything else is refused
with a one-line ModelError naming the operator.

Storage: the converted model is saved as one full ``.keras`` file (the card's
``weights``). The card names one weights file with one sha256, so a single file keeps
the card format unchanged, and the graph needs no code of ours to rebuild it (see
:mod:`faceapp.embedding.onnx_keras`).
:func:`~faceapp.embedding.onnx_keras.load_keras_file` opens it offline, safely: before Keras reads it, its
``config.json`` must name only the built-in layers this converter emits and our own
:func:`layer_classes` (whose configuration is literal values, checked); it is then
loaded with ``safe_mode=True`` (no Lambda layers, no pickled code) and our classes as
the only custom objects. A JSON spec + ``.weights.h5`` rebuilt here would be as safe
but is a second file format of our own to maintain.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from faceapp.embedding.onnx_keras import (  # noqa: F401 -- load_keras_file, check_keras_file: also importable from here
    BUILTIN_LAYERS,
    check_keras_file,
    layer_classes,
    load_keras_file,
    save_keras_file,
)
from faceapp.errors import ModelError

INPUT_SIZE = 112
ARCHITECTURE_VERSION = 1

SUPPORTED_OPS = (
    "Conv", "BatchNormalization", "Relu", "PRelu", "LeakyRelu", "Sigmoid", "Clip", "Add", "Sub", "Mul", "Div",
    "MaxPool", "AveragePool", "GlobalAveragePool", "ReduceMean", "Flatten", "Reshape", "Gemm", "MatMul",
    "Transpose", "Identity", "Dropout", "Concat", "Constant",
)
_FLOAT32_LOWEST = float(np.finfo(np.float32).min)


# -- conversion -----------------------------------------------------------------------
class _Value:
    """An ONNX tensor during conversion: a Keras tensor (``layout`` "nchw": a 4-D feature
    map held NHWC; "nhwc": a 4-D tensor that ONNX too holds NHWC, only for a flatten;
    "flat": 2-D), or a constant NumPy array."""

    def __init__(self, tensor=None, layout: str = "", constant: np.ndarray | None = None):
        self.tensor, self.layout, self.constant = tensor, layout, constant

    @property
    def is_constant(self) -> bool:
        return self.constant is not None


def _attributes(node) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _topological(nodes, available: set[str]) -> list:
    """The nodes in an order where each one's inputs come first (ONNX asks for it; we check)."""
    ready, pending, order = set(available) | {""}, list(nodes), []
    while pending:
        rest = [n for n in pending if not set(n.input) <= ready]
        done = [n for n in pending if set(n.input) <= ready]
        if not done:
            raise ModelError(f"the ONNX graph has a cycle or an undefined input (node {rest[0].name or rest[0].op_type!r})")
        for node in done:
            order.append(node)
            ready.update(node.output)
        pending = rest
    return order


class _Converter:
    def __init__(self, model, where: str):
        import keras
        from onnx import numpy_helper

        self.keras, self.layers, self.where = keras, keras.layers, where
        self.L = layer_classes()
        self.values: dict[str, _Value] = {}
        self.weights: list[tuple[Any, list[np.ndarray]]] = []  # (layer, weights) set once the model is built
        self.count = 0
        graph = model.graph
        for init in graph.initializer:
            self.values[init.name] = _Value(constant=numpy_helper.to_array(init))
        inputs = [i for i in graph.input if i.name not in self.values]
        if len(inputs) != 1 or len(graph.output) != 1:
            raise ModelError(f"{where}: an embedding model has one input and one output "
                             f"(this graph: {len(inputs)} inputs, {len(graph.output)} outputs)")
        dims = inputs[0].type.tensor_type.shape.dim
        shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)
        if len(shape) != 4 or shape[1:] != (3, INPUT_SIZE, INPUT_SIZE):
            raise ModelError(f"{where}: the input must be N x 3 x {INPUT_SIZE} x {INPUT_SIZE} (RGB NCHW), "
                             f"got {' x '.join(str(d if d is not None else '?') for d in shape)}")
        self.input = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), name="face_rgb")
        self.values[inputs[0].name] = _Value(self.input, "nchw")
        self.graph = graph

    # -- helpers ------------------------------------------------------------------
    def fail(self, node, why: str):
        raise ModelError(f"{self.where}: cannot convert {node.op_type} node {node.name or node.output[0]!r}: {why}")

    def name(self, node, suffix: str = "") -> str:
        self.count += 1
        return f"{node.op_type.lower()}_{self.count}{suffix}"

    def add(self, layer, inputs, weights: list[np.ndarray] | None = None):
        out = layer(*inputs) if isinstance(inputs, list) else layer(inputs)
        if weights is not None:
            self.weights.append((layer, [np.asarray(w, np.float32) for w in weights]))
        return out

    def tensor(self, node, index: int) -> _Value:
        value = self.values[node.input[index]]
        if value.is_constant:
            self.fail(node, f"input {index} is a constant where a tensor is expected")
        return value

    def constant(self, node, index: int) -> np.ndarray:
        if index >= len(node.input) or not node.input[index]:
            return None
        value = self.values[node.input[index]]
        if not value.is_constant:
            self.fail(node, f"input {index} must be a constant (an initializer)")
        return value.constant

    def feature_map(self, node, index: int = 0) -> _Value:
        value = self.tensor(node, index)
        if value.layout != "nchw":
            self.fail(node, f"expects a 4-D feature map, got a {value.layout} tensor")
        return value

    def to_layout(self, node, constant: np.ndarray, layout: str) -> np.ndarray:
        """An ONNX constant broadcast against a tensor of ``layout`` -> the Keras tensor's layout."""
        c = np.asarray(constant, np.float32)
        if layout == "nchw":
            if c.ndim > 4:
                self.fail(node, f"constant of shape {c.shape} does not broadcast to a feature map")
            c = c.reshape((1,) * (4 - c.ndim) + c.shape).transpose(0, 2, 3, 1)
        elif layout == "flat":
            if c.ndim > 2:
                self.fail(node, f"constant of shape {c.shape} does not broadcast to a 2-D tensor")
            c = c.reshape((1,) * (2 - c.ndim) + c.shape)
        else:
            self.fail(node, "elementwise op on a transposed tensor")
        if c.shape[0] != 1:
            self.fail(node, f"constant of shape {constant.shape} varies along the batch")
        return c

    def spatial(self, node, attrs: dict, shape, kernel) -> tuple[list[int], list[int], tuple[tuple[int, int], tuple[int, int]]]:
        strides = list(attrs.get("strides", [1, 1]))
        dilations = list(attrs.get("dilations", [1, 1]))
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        auto = attrs.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else str(auto)
        if len(kernel) != 2 or len(strides) != 2 or len(dilations) != 2 or len(pads) != 4:
            self.fail(node, "only 2-D kernels are supported")
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = [0, 0, 0, 0]
            for axis in range(2):
                size = shape[1 + axis]
                effective = (kernel[axis] - 1) * dilations[axis] + 1
                total = max((-(-size // strides[axis]) - 1) * strides[axis] + effective - size, 0)
                small, big = total // 2, total - total // 2
                pads[axis], pads[axis + 2] = (small, big) if auto == "SAME_UPPER" else (big, small)
        elif auto not in ("NOTSET", "VALID"):
            self.fail(node, f"auto_pad {auto}")
        return strides, dilations, ((pads[0], pads[2]), (pads[1], pads[3]))

    # -- operators ----------------------------------------------------------------
    def op_Conv(self, node, attrs):
        x = self.feature_map(node)
        w = self.constant(node, 1)
        b = self.constant(node, 2)
        if w is None or np.ndim(w) != 4:
            self.fail(node, "only 2-D convolutions with a constant kernel are supported")
        w = np.asarray(w, np.float32)
        out_ch, in_per_group, kh, kw = w.shape
        channels = int(x.tensor.shape[-1])
        groups = int(attrs.get("group", 1))
        strides, dilations, padding = self.spatial(node, attrs, x.tensor.shape, [kh, kw])
        if max(strides) > 1 and max(dilations) > 1:
            self.fail(node, "strides and dilations both above 1")
        if in_per_group * groups != channels or out_ch % groups:
            self.fail(node, f"kernel {w.shape} and group {groups} do not fit {channels} input channels")
        t = x.tensor
        if any(padding[0] + padding[1]):
            t = self.add(self.layers.ZeroPadding2D(padding, name=self.name(node, "_pad")), t)
        common = {"strides": strides, "dilation_rate": dilations, "padding": "valid", "use_bias": b is not None,
                  "name": self.name(node)}
        bias = [] if b is None else [np.asarray(b, np.float32).reshape(-1)]
        if groups == channels and in_per_group == 1 and groups > 1:
            mult = out_ch // channels
            kernel = w.reshape(channels, mult, kh, kw).transpose(2, 3, 0, 1)
            layer = self.layers.DepthwiseConv2D((kh, kw), depth_multiplier=mult, **common)
        else:
            kernel = w.transpose(2, 3, 1, 0)
            layer = self.layers.Conv2D(out_ch, (kh, kw), groups=groups, **common)
        return _Value(self.add(layer, t, [kernel, *bias]), "nchw")

    def op_BatchNormalization(self, node, attrs):
        x = self.tensor(node, 0)
        if x.layout not in ("nchw", "flat"):
            self.fail(node, "on a transposed tensor")
        parts = [np.asarray(self.constant(node, i), np.float32).reshape(-1) for i in range(1, 5)]
        layer = self.layers.BatchNormalization(axis=-1, epsilon=float(attrs.get("epsilon", 1e-5)), name=self.name(node))
        return _Value(self.add(layer, x.tensor, parts), x.layout)

    def op_Relu(self, node, attrs):
        x = self.tensor(node, 0)
        return _Value(self.add(self.layers.ReLU(name=self.name(node)), x.tensor), x.layout)

    def op_LeakyRelu(self, node, attrs):
        x = self.tensor(node, 0)
        layer = self.layers.LeakyReLU(negative_slope=float(attrs.get("alpha", 0.01)), name=self.name(node))
        return _Value(self.add(layer, x.tensor), x.layout)

    def op_Sigmoid(self, node, attrs):
        x = self.tensor(node, 0)
        return _Value(self.add(self.layers.Activation("sigmoid", name=self.name(node)), x.tensor), x.layout)

    def op_PRelu(self, node, attrs):
        x = self.tensor(node, 0)
        slope = self.to_layout(node, self.constant(node, 1), x.layout)[0]  # without the batch axis
        rank = len(x.tensor.shape) - 1
        shared = [axis + 1 for axis in range(rank) if slope.shape[axis] == 1] if slope.ndim == rank else None
        if shared is None or any(slope.shape[a - 1] not in (1, x.tensor.shape[a]) for a in range(1, rank + 1)):
            self.fail(node, f"slope of shape {self.constant(node, 1).shape}")
        layer = self.layers.PReLU(shared_axes=shared or None, name=self.name(node))
        return _Value(self.add(layer, x.tensor, [slope]), x.layout)

    def op_Clip(self, node, attrs):
        x = self.tensor(node, 0)
        low, high = attrs.get("min", _FLOAT32_LOWEST), attrs.get("max", -_FLOAT32_LOWEST)
        if len(node.input) > 1 and node.input[1]:
            low = float(np.asarray(self.constant(node, 1)).reshape(()))
        if len(node.input) > 2 and node.input[2]:
            high = float(np.asarray(self.constant(node, 2)).reshape(()))
        if low == 0.0:
            layer = self.layers.ReLU(max_value=None if high >= -_FLOAT32_LOWEST else high, name=self.name(node))
        else:
            layer = self.L["OnnxClip"](low, high, name=self.name(node))
        return _Value(self.add(layer, x.tensor), x.layout)

    def _binary(self, node, op: str):
        a, b = (self.values[name] for name in node.input[:2])
        if a.is_constant and b.is_constant:
            return _Value(constant={"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}[op](a.constant, b.constant))
        if a.is_constant or b.is_constant:
            x, c = (b, a.constant) if a.is_constant else (a, b.constant)
            c = self.to_layout(node, c, x.layout)
            layer = self.L["OnnxConstantOp"](op, c.shape, constant_first=a.is_constant, name=self.name(node))
            return _Value(self.add(layer, x.tensor, [c]), x.layout)
        if a.layout != b.layout or a.layout not in ("nchw", "flat"):
            self.fail(node, f"operands of layouts {a.layout} and {b.layout}")
        return _Value(self.add(self.L["OnnxBinary"](op, name=self.name(node)), [[a.tensor, b.tensor]]), a.layout)

    def op_Add(self, node, attrs):
        return self._binary(node, "add")

    def op_Sub(self, node, attrs):
        return self._binary(node, "sub")

    def op_Mul(self, node, attrs):
        return self._binary(node, "mul")

    def op_Div(self, node, attrs):
        return self._binary(node, "div")

    def _pool_geometry(self, node, attrs, x):
        kernel = list(attrs.get("kernel_shape", []))
        strides, dilations, padding = self.spatial(node, attrs, x.tensor.shape, kernel)
        if max(dilations) > 1:
            self.fail(node, "dilated pooling")
        padding = [list(p) for p in padding]
        if attrs.get("ceil_mode", 0):
            for axis in range(2):  # pad the end so that the floor of the output size is its ceiling
                size = int(x.tensor.shape[1 + axis]) + sum(padding[axis])
                span = size - kernel[axis]
                out = -(-span // strides[axis]) + 1
                if (out - 1) * strides[axis] >= size - padding[axis][1]:
                    out -= 1  # ONNX: the last window must start inside the input or the begin pad
                padding[axis][1] += max((out - 1) * strides[axis] + kernel[axis] - size, 0)
        return kernel, strides, padding

    def op_MaxPool(self, node, attrs):
        x = self.feature_map(node)
        if len(node.output) > 1 and node.output[1]:
            self.fail(node, "the Indices output")
        kernel, strides, padding = self._pool_geometry(node, attrs, x)
        t = x.tensor
        if any(padding[0] + padding[1]):
            t = self.add(self.L["OnnxPad2D"](padding, _FLOAT32_LOWEST, name=self.name(node, "_pad")), t)
        return _Value(self.add(self.layers.MaxPooling2D(kernel, strides, padding="valid", name=self.name(node)), t), "nchw")

    def op_AveragePool(self, node, attrs):
        x = self.feature_map(node)
        kernel, strides, padding = self._pool_geometry(node, attrs, x)
        t, mode = x.tensor, "valid"
        if any(padding[0] + padding[1]):
            if attrs.get("count_include_pad", 0) and not attrs.get("ceil_mode", 0):
                t = self.add(self.layers.ZeroPadding2D(tuple(map(tuple, padding)), name=self.name(node, "_pad")), t)
            else:  # padding left out of the average: only TensorFlow's "same" does it
                same = []
                for axis in range(2):
                    size = int(x.tensor.shape[1 + axis])
                    total = max((-(-size // strides[axis]) - 1) * strides[axis] + kernel[axis] - size, 0)
                    same.append([total // 2, total - total // 2])
                if same != padding:
                    self.fail(node, "padding excluded from the average that is not SAME padding")
                mode = "same"
        layer = self.layers.AveragePooling2D(kernel, strides, padding=mode, name=self.name(node))
        return _Value(self.add(layer, t), "nchw")

    def op_GlobalAveragePool(self, node, attrs):
        x = self.feature_map(node)
        layer = self.layers.GlobalAveragePooling2D(keepdims=True, name=self.name(node))
        return _Value(self.add(layer, x.tensor), "nchw")

    def op_ReduceMean(self, node, attrs):
        x = self.feature_map(node)
        axes = attrs.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = self.constant(node, 1).tolist()
        if sorted(a % 4 for a in (axes or [])) != [2, 3] or attrs.get("noop_with_empty_axes", 0):
            self.fail(node, f"axes {axes} (only the mean over H and W)")
        keep = bool(attrs.get("keepdims", 1))
        layer = self.layers.GlobalAveragePooling2D(keepdims=keep, name=self.name(node))
        return _Value(self.add(layer, x.tensor), "nchw" if keep else "flat")

    def _flatten(self, node, x: _Value) -> _Value:
        if x.layout == "flat":
            return x
        t = x.tensor
        if x.layout == "nchw" and (t.shape[1], t.shape[2]) != (1, 1):
            t = self.add(self.layers.Permute((3, 1, 2), name=self.name(node, "_nchw")), t)  # ONNX's flatten order
        return _Value(self.add(self.layers.Flatten(name=self.name(node)), t), "flat")

    def op_Flatten(self, node, attrs):
        x = self.tensor(node, 0)
        if attrs.get("axis", 1) != 1:
            self.fail(node, f"axis {attrs.get('axis')} (only 1)")
        return self._flatten(node, x)

    def op_Reshape(self, node, attrs):
        x = self.tensor(node, 0)
        shape = [int(v) for v in np.asarray(self.constant(node, 1)).reshape(-1)]
        size = int(np.prod(x.tensor.shape[1:]))
        if len(shape) != 2 or shape[0] not in (0, 1, -1) or shape[1] not in (-1, size) or shape == [-1, -1]:
            self.fail(node, f"shape {shape} (only a flatten to N x {size})")
        return self._flatten(node, x)

    def op_Transpose(self, node, attrs):
        x = self.tensor(node, 0)
        perm = list(attrs.get("perm", []))
        if perm == list(range(len(x.tensor.shape))):
            return x
        if x.layout == "nchw" and perm == [0, 2, 3, 1]:
            return _Value(x.tensor, "nhwc")
        self.fail(node, f"perm {perm} (only NCHW -> NHWC before a flatten)")

    def op_Gemm(self, node, attrs):
        x = self.tensor(node, 0)
        if x.layout != "flat" or attrs.get("transA", 0):
            self.fail(node, "the first operand must be a 2-D tensor, not transposed")
        w = np.asarray(self.constant(node, 1), np.float32)
        w = (w.T if attrs.get("transB", 0) else w) * float(attrs.get("alpha", 1.0))
        c = self.constant(node, 2)
        bias = [] if c is None else [np.broadcast_to(np.asarray(c, np.float32) * float(attrs.get("beta", 1.0)), (1, w.shape[1]))[0]]
        layer = self.layers.Dense(w.shape[1], use_bias=c is not None, name=self.name(node))
        return _Value(self.add(layer, x.tensor, [w, *bias]), "flat")

    def op_MatMul(self, node, attrs):
        x = self.tensor(node, 0)
        w = self.constant(node, 1)
        if x.layout != "flat" or w.ndim != 2:
            self.fail(node, "only a 2-D tensor times a 2-D constant")
        layer = self.layers.Dense(w.shape[1], use_bias=False, name=self.name(node))
        return _Value(self.add(layer, x.tensor, [w]), "flat")

    def op_Concat(self, node, attrs):
        parts = [self.tensor(node, i) for i in range(len(node.input))]
        layout = parts[0].layout
        if any(p.layout != layout for p in parts) or layout not in ("nchw", "flat") or attrs.get("axis") not in (1, 1 - (4 if layout == "nchw" else 2)):
            self.fail(node, f"axis {attrs.get('axis')} (only the channels)")
        layer = self.layers.Concatenate(axis=-1, name=self.name(node))
        return _Value(self.add(layer, [[p.tensor for p in parts]]), layout)

    def op_Identity(self, node, attrs):
        return self.values[node.input[0]]

    def op_Dropout(self, node, attrs):
        if len(node.output) > 1 and node.output[1]:
            self.fail(node, "the mask output")
        return self.values[node.input[0]]

    def op_Constant(self, node, attrs):
        from onnx import numpy_helper

        if "value" not in attrs:
            self.fail(node, "only a 'value' tensor")
        return _Value(constant=numpy_helper.to_array(attrs["value"]))

    # -- the graph ----------------------------------------------------------------
    def run(self):
        nodes = _topological(self.graph.node, set(self.values))
        for node in nodes:
            if node.domain not in ("", "ai.onnx") or node.op_type not in SUPPORTED_OPS:
                raise ModelError(f"{self.where}: unsupported ONNX operator {node.op_type} (node {node.name or node.output[0]!r}); "
                                 f"FaceApp converts graphs of {', '.join(SUPPORTED_OPS)}")
        for node in nodes:
            self.values[node.output[0]] = getattr(self, f"op_{node.op_type}")(node, _attributes(node))
        out = self.values[self.graph.output[0].name]
        if out.is_constant:
            raise ModelError(f"{self.where}: the output is a constant")
        if out.layout == "nchw" and tuple(out.tensor.shape[1:3]) == (1, 1):
            out = _Value(self.layers.Flatten(name="embedding_flatten")(out.tensor), "flat")
        if out.layout != "flat":
            raise ModelError(f"{self.where}: the output must be one vector a face (N x D), got shape {tuple(out.tensor.shape)}")
        model = self.keras.Model(self.input, out.tensor, name="onnx_graph")
        for layer, weights in self.weights:
            layer.set_weights(weights)
        return model


def convert_graph(model, where: str = "ONNX model"):
    """The Keras model (NHWC RGB 0..255 in, the graph's output out) of an ONNX ModelProto;
    ModelError (one line) naming what cannot be converted."""
    from faceapp.accel.device import import_tensorflow

    import_tensorflow()  # before Keras imports it, so that its CUDA-probing noise stays hidden
    try:
        return _Converter(model, where).run()
    except ModelError:
        raise
    except Exception as error:  # noqa: BLE001 -- Keras refusing a layer's shapes, numpy a broadcast
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelError(f"{where}: the graph cannot be converted ({first})") from None
