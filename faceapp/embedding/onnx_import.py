"""Convert an ArcFace-style ONNX embedding model into FaceApp's Keras weights.

Used by ``faceapp model import`` and ``tools/convert_sface.py``. The conversion maps the
ONNX file's initializers onto one of our own Keras networks, recognised by its graph:

* ``sface`` (OpenCV Zoo's SFace, :mod:`faceapp.embedding.sface`): every SFace initializer
  present with its shape, one 1x3x112x112 input. Each initializer is copied into the
  layers of :func:`~faceapp.embedding.sface.build_sface` (NCHW kernels transposed to
  Keras' NHWC, the projection's rows re-ordered for Keras' channels-last flatten).

* ``onnx_graph`` (any other graph): converted operator by operator into an equivalent
  Keras model by :mod:`faceapp.embedding.onnx_graph` (our own converter of common CNN
  operators: Conv, BatchNormalization, PRelu, pooling, Gemm, ...; not ``onnx2tf``). A
  graph holding another operator is refused in one line naming it.

SFace graphs keep the weight mapping, so that an import of OpenCV Zoo's file equals the
shipped model exactly. The ``onnx`` package (a development dependency) and
``onnxruntime`` (the reference the result is checked against) are imported lazily; when
missing, the error says what to install.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from faceapp.errors import ModelError

#: Architectures :func:`convert` makes: SFace's weight mapping, else the generic converter.
SUPPORTED = ("sface", "onnx_graph")
#: OpenCV Zoo's face_recognition_sface_2021dec.onnx (the file the shipped weights come from).
SFACE_2021DEC_SHA256 = "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79"
#: Initializers of the SFace graph that carry no weight (scalars of its input scaling).
_SFACE_SCALARS = {"scalar_op1", "scalar_op2"}


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ModelError("importing an ONNX model needs the 'onnx' package: pip install onnx") from None
    return onnx


def load_onnx(path: str | os.PathLike) -> Any:
    """The ONNX ModelProto of ``path``; ModelError (one line) for a file that is not one."""
    onnx = _onnx()
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: {'is not a regular file' if path.exists() else 'not found'}")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as error:  # noqa: BLE001 -- protobuf's DecodeError, onnx's ValidationError, ...
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelError(f"{path}: not a readable ONNX model ({first})") from None
    if not model.graph.node:
        raise ModelError(f"{path}: the ONNX graph has no nodes")
    return model


def load_initializers(model_or_path: Any) -> dict[str, np.ndarray]:
    """Every initializer of an ONNX model (or file) as float32 arrays."""
    from onnx import numpy_helper

    model = load_onnx(model_or_path) if isinstance(model_or_path, (str, os.PathLike)) else model_or_path
    return {init.name: numpy_helper.to_array(init).astype(np.float32) for init in model.graph.initializer}


def _sface_expected_shapes() -> dict[str, tuple[int, ...]]:
    """SFace's initializer names and shapes, from our layer list."""
    from faceapp.embedding.sface import BLOCKS, EMBEDDING_DIM, INPUT_SIZE, STEM_FILTERS

    shapes: dict[str, tuple[int, ...]] = {}

    def unit(name: str, kernel: tuple[int, ...], channels: int) -> None:
        shapes[f"{name}_conv2d_weight"] = kernel
        for part in ("gamma", "beta", "moving_mean", "moving_var"):
            shapes[f"{name}_batchnorm_{part}"] = (channels,)
        shapes[f"{name}_relu_gamma"] = (channels, 1, 1)

    unit("conv_1", (STEM_FILTERS, 3, 3, 3), STEM_FILTERS)
    channels, side = STEM_FILTERS, INPUT_SIZE
    for block in BLOCKS:
        unit(f"conv_{block.index}_dw", (channels, 1, 3, 3), channels)
        unit(f"conv_{block.index}", (block.filters, channels, 1, 1), block.filters)
        channels, side = block.filters, side // block.stride
    for part in ("gamma", "beta", "moving_mean", "moving_var"):
        shapes[f"bn1_{part}"] = (channels,)
        shapes[f"fc1_{part}"] = (EMBEDDING_DIM,)
    shapes["pre_fc1_weight"] = (EMBEDDING_DIM, channels * side * side)
    shapes["pre_fc1_bias"] = (EMBEDDING_DIM,)
    return shapes


def _input_shape(model: Any) -> tuple[Any, ...]:
    initializers = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        return ()
    dims = inputs[0].type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims)


def detect_architecture(model: Any, weights: dict[str, np.ndarray] | None = None) -> str | None:
    """``"sface"`` when ``model`` is an SFace graph (converted by our weight mapping), else
    None (:mod:`faceapp.embedding.onnx_graph` converts it operator by operator)."""
    weights = load_initializers(model) if weights is None else weights
    shape = _input_shape(model)
    if len(shape) != 4 or tuple(shape[1:]) != (3, 112, 112):
        return None
    expected = _sface_expected_shapes()
    if set(weights) - _SFACE_SCALARS != set(expected):
        return None
    if any(tuple(weights[name].shape) != dims for name, dims in expected.items()):
        return None
    return "sface"


def convert_sface(onnx_weights: dict[str, np.ndarray]):
    """A Keras SFace model (:func:`~faceapp.embedding.sface.build_sface`) carrying the ONNX weights."""
    from faceapp.embedding.sface import BLOCKS, build_sface

    model = build_sface()
    used: set[str] = set()

    def take(name: str) -> np.ndarray:
        used.add(name)
        return onnx_weights[name]

    def set_bn(layer_name: str) -> None:
        model.get_layer(layer_name).set_weights(
            [take(f"{layer_name}_{part}") for part in ("gamma", "beta", "moving_mean", "moving_var")]
        )

    units = ["conv_1"]
    for block in BLOCKS:
        units += [f"conv_{block.index}_dw", f"conv_{block.index}"]
    for unit in units:
        kernel = take(f"{unit}_conv2d_weight")  # (out, in/groups, kh, kw)
        if unit.endswith("_dw"):
            kernel = kernel.transpose(2, 3, 0, 1)  # (kh, kw, C, 1)
        else:
            kernel = kernel.transpose(2, 3, 1, 0)  # (kh, kw, in, out)
        model.get_layer(f"{unit}_conv2d").set_weights([kernel])
        set_bn(f"{unit}_batchnorm")
        alpha = take(f"{unit}_relu_gamma").reshape(1, 1, -1)
        model.get_layer(f"{unit}_relu").set_weights([alpha])
    set_bn("bn1")
    weight = take("pre_fc1_weight")  # (128, 1024*7*7), rows of the NCHW flatten
    channels = model.get_layer("bn1").get_weights()[0].shape[0]
    side = round((weight.shape[1] // channels) ** 0.5)
    weight = weight.reshape(-1, channels, side, side).transpose(2, 3, 1, 0).reshape(-1, weight.shape[0])
    model.get_layer("pre_fc1").set_weights([weight, take("pre_fc1_bias")])
    set_bn("fc1")
    unused = set(onnx_weights) - used - _SFACE_SCALARS
    if unused:
        raise ModelError(f"ONNX initializers left unused: {sorted(unused)}")
    return model


def convert(path: str | os.PathLike) -> tuple[str, Any]:
    """``(architecture, trainable Keras model)`` of an ONNX file: ``sface`` (our weight
    mapping) for an SFace graph, else ``onnx_graph`` (:func:`~faceapp.embedding.onnx_graph.convert_graph`).
    ModelError (one line) for a file that is not ONNX or a graph that cannot be converted."""
    model = load_onnx(path)
    weights = load_initializers(model)
    if detect_architecture(model, weights) == "sface":
        return "sface", convert_sface(weights)
    from faceapp.embedding.onnx_graph import convert_graph

    return "onnx_graph", convert_graph(model, str(path))


def weights_file_name(architecture: str, model_id: str) -> str:
    """The name of the weights file a converted model is saved as (:func:`save_converted`)."""
    return f"{model_id}.keras" if architecture == "onnx_graph" else f"{model_id}.weights.h5"


def save_converted(architecture: str, keras_model: Any, path: str | os.PathLike) -> None:
    """Write a model :func:`convert` made: SFace's weights (its layers are ours), or the
    whole ``.keras`` model of a converted graph."""
    if architecture == "onnx_graph":
        from faceapp.embedding.onnx_graph import save_keras_file

        save_keras_file(keras_model, path)
    else:
        keras_model.save_weights(path)


def onnxruntime_embeddings(path: str | os.PathLike, faces_bgr: np.ndarray) -> np.ndarray:
    """The ONNX model under onnxruntime on aligned BGR uint8 crops ``(N, 112, 112, 3)``:
    RGB float input in [0, 255], NCHW, one face at a time; unit rows (float64)."""
    try:
        import onnxruntime
    except ImportError:
        raise ModelError("checking an imported model needs 'onnxruntime': pip install onnxruntime") from None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # files that list initializers as inputs: noisy warnings
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        blob = np.ascontiguousarray(np.asarray(faces_bgr)[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
        raw = np.concatenate([session.run(None, {name: blob[i : i + 1]})[0].reshape(1, -1) for i in range(len(blob))])
    except Exception as error:  # noqa: BLE001 -- onnxruntime's own exception types
        raise ModelError(f"{path}: onnxruntime cannot run it ({str(error).strip().splitlines()[0]})") from None
    return unit_rows(raw)


def unit_rows(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, np.float64)
    return values / np.maximum(np.linalg.norm(values, axis=1, keepdims=True), 1e-12)
