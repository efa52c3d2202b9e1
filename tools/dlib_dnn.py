"""Read a dlib DNN file (``dlib::serialize(net)``) without dlib (development tool).

Written from dlib's serialisation code (``dlib/serialize.h``, ``dlib/float_details.h``,
``dlib/cuda/tensor.h``, ``dlib/dnn/{core,layers,input,loss}.h``, v20.0.1):

* integers: one control byte (low 4 bits: how many bytes follow; 0x80: negative for
  signed types), then the magnitude, little-endian;
* floating point: two such integers, a signed 64-bit mantissa then a 16-bit exponent
  (value ``mantissa * 2**exponent``; exponents 32000..32002 mean inf, -inf, NaN);
* ``bool``: the ASCII byte ``'1'`` or ``'0'``; ``std::string``: its length, then its bytes;
* a tensor: version 2, then ``num_samples, k, nr, nc``, then the values as little-endian
  IEEE float32, in dlib's NCHW order; an ``alias_tensor`` (a view into a layer's single
  parameter tensor): version 1 and the four sizes, no values.

A network carries no type information: its C++ type decides how the bytes are read. The
file starts at the loss layer and each ``add_layer`` writes its version, then its whole
sub-network, then its own layer and state, so the layers' details come input first. This
module reads one network type, the one of dlib's face recognition ResNet
(``anet_type`` in ``examples/dnn_face_recognition_ex.cpp``), described by
:func:`anet_type`; every version string, size, stride and padding in the file is checked
against it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class DlibFormatError(ValueError):
    """The bytes are not the dlib network that the reader was asked to read."""


class DlibStream:
    """Reads dlib's encodings from a byte string, front to back."""

    def __init__(self, data: bytes):
        self.data = data
        self.offset = 0

    def _take(self, count: int) -> bytes:
        if self.offset + count > len(self.data):
            raise DlibFormatError(f"the file ends at byte {len(self.data)}; {count} more wanted at {self.offset}")
        chunk = self.data[self.offset : self.offset + count]
        self.offset += count
        return chunk

    def integer(self, signed: bool = True) -> int:
        """One integer: a control byte, then up to 8 little-endian magnitude bytes."""
        at = self.offset
        control = self._take(1)[0]
        size = control & 0x0F
        negative = bool(control & 0x80)
        if size == 0 or size > 8 or (negative and not signed) or control & 0x70:
            raise DlibFormatError(f"byte {at}: 0x{control:02x} is not the control byte of an integer")
        value = int.from_bytes(self._take(size), "little")
        return -value if negative else value

    def unsigned(self) -> int:
        return self.integer(signed=False)

    def real(self) -> float:
        """A float or double: mantissa, then exponent (dlib's ``float_details``)."""
        if self.offset < len(self.data) and self.data[self.offset] & 0x70:
            raise DlibFormatError(f"byte {self.offset}: an old ASCII-coded float, which this reader does not read")
        mantissa = self.integer()
        exponent = self.integer()
        if exponent >= 32000:
            return {32000: math.inf, 32001: -math.inf}.get(exponent, math.nan)
        return math.ldexp(float(mantissa), exponent)

    def boolean(self) -> bool:
        at = self.offset
        byte = self._take(1)
        if byte not in (b"0", b"1"):
            raise DlibFormatError(f"byte {at}: {byte!r} is not a bool ('0' or '1')")
        return byte == b"1"

    def string(self) -> str:
        return self._take(self.unsigned()).decode("latin-1")

    def version(self, *allowed: int) -> int:
        at = self.offset
        value = self.integer()
        if value not in allowed:
            raise DlibFormatError(f"byte {at}: version {value}, expected one of {allowed}")
        return value

    def tag(self, *allowed: str) -> str:
        at = self.offset
        name = self.string()
        if name not in allowed:
            raise DlibFormatError(f"byte {at}: {name!r}, expected one of {allowed}")
        return name

    def tensor(self) -> np.ndarray:
        """A ``resizable_tensor``: float32 ``(num_samples, k, nr, nc)``."""
        self.version(2)
        shape = tuple(self.integer() for _ in range(4))
        if min(shape) < 0:
            raise DlibFormatError(f"tensor of negative size {shape}")
        count = math.prod(shape)
        return np.frombuffer(self._take(4 * count), dtype="<f4").astype(np.float32).reshape(shape)

    def alias(self) -> tuple[int, int, int, int]:
        """An ``alias_tensor``: only its shape ``(num_samples, k, nr, nc)``."""
        self.version(1)
        return tuple(self.integer() for _ in range(4))


# --------------------------------------------------------------------------- the network type
@dataclass
class Layer:
    """One layer of the network, input first. ``kind`` is dlib's layer (``con``,
    ``affine``, ``relu``, ``max_pool``, ``avg_pool``, ``add_prev``, ``fc``) or a
    wrapper without a layer of its own (``tag``, ``skip``); ``spec`` what the C++ type
    fixes; ``values`` what the file holds (tensors as numpy arrays)."""

    kind: str
    spec: dict = field(default_factory=dict)
    values: dict = field(default_factory=dict)


def _con(filters: int, size: int, stride: int) -> Layer:
    # dlib's default padding: size // 2 when the stride is 1, else 0 (the same for pools).
    return Layer("con", {"filters": filters, "size": size, "stride": stride, "padding": size // 2 if stride == 1 else 0})


def _pool(kind: str, size: int, stride: int) -> Layer:
    return Layer(kind, {"size": size, "stride": stride, "padding": size // 2 if stride == 1 else 0})


def _block(filters: int, stride: int) -> list[Layer]:
    """``block = BN<con<N,3,3,1,1,relu<BN<con<N,3,3,stride,stride,SUBNET>>>>>``, BN = affine."""
    return [_con(filters, 3, stride), Layer("affine"), Layer("relu"), _con(filters, 3, 1), Layer("affine")]


def _ares(filters: int) -> list[Layer]:
    """``relu<add_prev1<block<N,affine,1,tag1<SUBNET>>>>``."""
    return [Layer("tag", {"id": 1}), *_block(filters, 1), Layer("add_prev", {"tag": 1}), Layer("relu")]


def _ares_down(filters: int) -> list[Layer]:
    """``relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUBNET>>>>>>>``."""
    return [Layer("tag", {"id": 1}), *_block(filters, 2), Layer("tag", {"id": 2}), Layer("skip", {"tag": 1}),
            _pool("avg_pool", 2, 2), Layer("add_prev", {"tag": 2}), Layer("relu")]


def anet_type() -> list[Layer]:
    """dlib's face recognition ResNet, input first (without its input and loss layers)::

        loss_metric<fc_no_bias<128,avg_pool_everything<
            alevel0<alevel1<alevel2<alevel3<alevel4<
            max_pool<3,3,2,2,relu<affine<con<32,7,7,2,2,input_rgb_image_sized<150>>>>>>>>>>>>>
        alevel0 = ares_down<256>; alevel1 = ares<256,ares<256,ares_down<256>>>;
        alevel2 = ares<128,ares<128,ares_down<128>>>; alevel3 = ares<64> x3 on ares_down<64>;
        alevel4 = ares<32> x3
    """
    layers = [_con(32, 7, 2), Layer("affine"), Layer("relu"), _pool("max_pool", 3, 2)]
    for _ in range(3):
        layers += _ares(32)
    for filters, plain in ((64, 3), (128, 2), (256, 2), (256, 0)):
        layers += _ares_down(filters)
        for _ in range(plain):
            layers += _ares(filters)
    layers += [Layer("avg_pool", {"size": 0, "stride": 1, "padding": 0}),  # avg_pool_everything
               Layer("fc", {"outputs": 128, "bias": False})]
    return layers


# --------------------------------------------------------------------------- the layers' details
def _check(layer: Layer, name: str, found, expected) -> None:
    if found != expected:
        raise DlibFormatError(f"{layer.kind}: {name} is {found} in the file, the network type says {expected}")


def _read_con(stream: DlibStream, layer: Layer) -> None:
    version = stream.tag("con_4", "con_5", "con_6")
    params = stream.tensor()
    filters, rows, cols = stream.integer(), stream.integer(), stream.integer()
    stride_y, stride_x, padding_y, padding_x = (stream.integer() for _ in range(4))
    filter_shape, bias_shape = stream.alias(), stream.alias()
    for _ in range(4):  # learning rate and weight decay multipliers
        stream.real()
    use_bias = stream.boolean() if version in ("con_5", "con_6") else True
    use_relu = stream.boolean() if version == "con_6" else False
    spec = layer.spec
    _check(layer, "num_filters", filters, spec["filters"])
    _check(layer, "size", (rows, cols), (spec["size"],) * 2)
    _check(layer, "stride", (stride_y, stride_x), (spec["stride"],) * 2)
    _check(layer, "padding", (padding_y, padding_x), (spec["padding"],) * 2)
    if use_relu:
        raise DlibFormatError("con: a fused ReLU (con_6 use_relu), which this network type does not have")
    count = math.prod(filter_shape)
    biases = math.prod(bias_shape) if use_bias else 0
    if filter_shape[0] != filters or filter_shape[2:] != (rows, cols) or params.size != count + biases:
        raise DlibFormatError(f"con: {params.size} parameters do not fit filters {filter_shape} and biases {bias_shape}")
    flat = params.reshape(-1)
    layer.values["filters"] = flat[:count].reshape(filter_shape)  # (num_filters, k, nr, nc)
    layer.values["biases"] = flat[count:].copy() if use_bias else np.zeros(filters, np.float32)


def _read_affine(stream: DlibStream, layer: Layer) -> None:
    version = stream.tag("affine_", "affine_2")  # (a bn_con2 here would be a training net)
    params = stream.tensor()
    gamma_shape, beta_shape = stream.alias(), stream.alias()
    mode = stream.integer()
    disabled = stream.boolean() if version == "affine_2" else False
    _check(layer, "mode (0: CONV_MODE, per channel)", mode, 0)
    if disabled:
        raise DlibFormatError("affine: disabled, which this network type does not expect")
    count = math.prod(gamma_shape)
    if gamma_shape != beta_shape or params.size != 2 * count:
        raise DlibFormatError(f"affine: {params.size} parameters do not fit gamma {gamma_shape}, beta {beta_shape}")
    flat = params.reshape(-1)
    layer.values["gamma"], layer.values["beta"] = flat[:count].copy(), flat[count:].copy()


def _read_pool(stream: DlibStream, layer: Layer) -> None:
    stream.tag(f"{layer.kind}_2")
    rows, cols = stream.integer(), stream.integer()
    stride_y, stride_x, padding_y, padding_x = (stream.integer() for _ in range(4))
    _check(layer, "size", (rows, cols), (layer.spec["size"],) * 2)
    _check(layer, "stride", (stride_y, stride_x), (layer.spec["stride"],) * 2)
    _check(layer, "padding", (padding_y, padding_x), (layer.spec["padding"],) * 2)


def _read_relu(stream: DlibStream, layer: Layer) -> None:
    if stream.tag("relu_", "relu_2") == "relu_2" and stream.boolean():
        raise DlibFormatError("relu: disabled, which this network type does not expect")


def _read_fc(stream: DlibStream, layer: Layer) -> None:
    version = stream.tag("fc_2", "fc_3")
    outputs, inputs = stream.unsigned(), stream.unsigned()
    params = stream.tensor()
    weight_shape, _bias_shape = stream.alias(), stream.alias()
    bias_mode = stream.integer()
    for _ in range(4):
        stream.real()
    if version == "fc_3":
        stream.boolean()  # use_bias: no effect without FC_HAS_BIAS
    _check(layer, "num_outputs", outputs, layer.spec["outputs"])
    _check(layer, "bias mode (1: FC_NO_BIAS)", bias_mode, 1)
    if weight_shape[:2] != (inputs, outputs) or params.size != inputs * outputs:
        raise DlibFormatError(f"fc: {params.size} parameters do not fit {inputs} x {outputs}")
    layer.values["weights"] = params.reshape(inputs, outputs)  # output = input @ weights


_READERS = {"con": _read_con, "affine": _read_affine, "relu": _read_relu, "max_pool": _read_pool,
            "avg_pool": _read_pool, "fc": _read_fc,
            "add_prev": lambda stream, layer: stream.tag("add_prev_")}


@dataclass
class DlibNetwork:
    """What the file holds: the input layer's mean colour (R, G, B; dlib subtracts it and
    divides by 256), its image size, the loss layer's margin and distance threshold, and
    the layers (input first) with their values."""

    mean_rgb: tuple[float, float, float]
    input_size: tuple[int, int]
    loss: dict
    layers: list[Layer]

    def of_kind(self, kind: str) -> list[Layer]:
        return [layer for layer in self.layers if layer.kind == kind]


def _read_state(stream: DlibStream, version: int, input_level: bool) -> None:
    """An ``add_layer``'s bookkeeping after its layer: three bools and cached tensors
    (empty in a saved network; read and dropped)."""
    for _ in range(3):  # this_layer_setup_called, gradient_input_is_stale, get_output_and_gradient_input_disabled
        stream.boolean()
    stream.tensor()  # x_grad
    stream.tensor()  # cached_output
    if input_level:
        stream.tensor()  # grad_final
        if version >= 3:
            stream.unsigned()  # _sample_expansion_factor
    elif version == 2:
        stream.tensor()  # params_grad


def read_network(data: bytes, layers: list[Layer] | None = None) -> DlibNetwork:
    """Parse ``data`` (a whole ``.dat`` file) as the network ``layers`` (default:
    :func:`anet_type`) under ``loss_metric`` and ``input_rgb_image_sized``; the file
    must end exactly where the network does."""
    layers = anet_type() if layers is None else layers
    stream = DlibStream(data)
    stream.version(1)  # add_loss_layer
    loss_version = stream.tag("loss_metric_", "loss_metric_2")
    loss = {"margin": 0.1, "distance_threshold": 0.75}
    if loss_version == "loss_metric_2":
        loss = {"margin": stream.real(), "distance_threshold": stream.real()}
    # Descend: the wrappers' versions, output side first.
    versions: list[int] = [0] * len(layers)
    for index in range(len(layers) - 1, 0, -1):
        wrapper = layers[index].kind in ("tag", "skip")
        versions[index] = stream.version(1) if wrapper else stream.version(1, 2)
    if layers[0].kind in ("tag", "skip"):
        raise DlibFormatError("the layer on the input must be a real layer")
    versions[0] = stream.version(2, 3)  # the add_layer holding the input layer
    stream.tag("input_rgb_image_sized")
    mean_rgb = (stream.real(), stream.real(), stream.real())
    input_size = (stream.unsigned(), stream.unsigned())
    # Ascend: each layer's details and state, input first.
    for index, layer in enumerate(layers):
        if layer.kind in ("tag", "skip"):
            continue
        _READERS[layer.kind](stream, layer)
        _read_state(stream, versions[index], input_level=index == 0)
    if stream.offset != len(data):
        raise DlibFormatError(f"{len(data) - stream.offset} bytes left after the network")
    return DlibNetwork(mean_rgb, input_size, loss, layers)


def read_network_file(path: Path) -> DlibNetwork:
    return read_network(Path(path).read_bytes())
