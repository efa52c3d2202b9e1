"""Convert dlib's ``dlib_face_recognition_resnet_model_v1.dat`` into FaceApp's Keras weights
(development tool).

Usage::

    python tools/convert_dlib_resnet.py [SOURCE.dat] [--out-dir models]

``SOURCE.dat`` defaults to the copy in the ``face_recognition_models`` package
(``pip install face_recognition_models``; version 0.3.0 on PyPI carries Davis King's
file unchanged). The script checks its sha256, reads it without dlib
(``tools/dlib_dnn.py``, which checks every layer's type, size, stride and padding against
dlib's ``anet_type``), checks that the input layer's mean colour is
:data:`faceapp.embedding.dlib_resnet.MEAN_RGB`, folds each ``affine`` layer into the
convolution before it (``W * gamma``, ``b * gamma + beta``; dlib's NCHW filters
``(num_filters, k, nr, nc)`` to Keras' ``(nr, nc, k, num_filters)``), copies the
``fc_no_bias`` matrix (``input @ W``, already Keras' layout), writes
``dlib_resnet_v1.weights.h5`` and prints its sha256. When the ``dlib`` module is
installed it also prints the largest descriptor difference to dlib itself on noise chips.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from dlib_dnn import DlibNetwork, read_network

from faceapp.embedding import dlib_resnet
from faceapp.embedding.dlib_resnet import MEAN_RGB, SOURCE_SHA256, WEIGHTS_FILE, build_dlib_resnet, conv_layer_names

logger = logging.getLogger("convert_dlib_resnet")
SOURCE_NAME = "dlib_face_recognition_resnet_model_v1.dat"
LANDMARKS_NAME = "shape_predictor_5_face_landmarks.dat"  # (the tests' landmarks)


def packaged_model(name: str) -> Path | None:
    """``name`` (e.g. ``dlib_face_recognition_resnet_model_v1.dat``) in the installed
    ``face_recognition_models`` package, or None. Found without importing the package,
    whose ``__init__`` needs ``pkg_resources`` (gone from recent setuptools)."""
    import importlib.util

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    return path if path.is_file() else None


def default_source() -> Path:
    """The ``.dat`` file inside the installed ``face_recognition_models`` package."""
    path = packaged_model(SOURCE_NAME)
    if path is None:
        raise SystemExit("give the .dat file, or pip install face_recognition_models")
    return path


def load_source(path: Path) -> DlibNetwork:
    """The network in ``path`` (checked sha256, structure and input scaling)."""
    data = Path(path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SOURCE_SHA256:
        raise SystemExit(f"{path}: sha256 {digest} is not the released file's {SOURCE_SHA256}")
    network = read_network(data)
    if network.mean_rgb != MEAN_RGB or network.input_size != (dlib_resnet.INPUT_SIZE,) * 2:
        raise SystemExit(f"{path}: input mean {network.mean_rgb}, size {network.input_size} are not the model's")
    return network


def folded_convolutions(network: DlibNetwork) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Each ``con`` with the ``affine`` after it folded in: (Keras kernel, bias, stride)."""
    layers = network.layers
    folded = []
    for index, layer in enumerate(layers):
        if layer.kind != "con":
            continue
        affine = layers[index + 1]
        if affine.kind != "affine":
            raise SystemExit(f"layer {index}: a con not followed by an affine layer")
        gamma = affine.values["gamma"].astype(np.float64)
        beta = affine.values["beta"].astype(np.float64)
        filters = layer.values["filters"].astype(np.float64)  # (out, in, rows, cols)
        kernel = filters.transpose(2, 3, 1, 0) * gamma  # (rows, cols, in, out), scaled per output
        bias = layer.values["biases"].astype(np.float64) * gamma + beta
        folded.append((kernel.astype(np.float32), bias.astype(np.float32), layer.spec["stride"]))
    return folded


def convert(network: DlibNetwork):
    """Our Keras network carrying ``network``'s weights (every dlib tensor used once)."""
    from faceapp.accel.device import import_tensorflow

    import_tensorflow()  # quietly, before Keras imports it
    model = build_dlib_resnet()
    convolutions = folded_convolutions(network)
    names = conv_layer_names()
    if len(convolutions) != len(names):
        raise SystemExit(f"{len(convolutions)} convolutions in the file, {len(names)} in the model")
    for name, (kernel, bias, stride) in zip(names, convolutions, strict=True):
        layer = model.get_layer(name)
        if layer.strides != (stride, stride) or tuple(layer.kernel.shape) != kernel.shape:
            raise SystemExit(f"{name}: the file's {kernel.shape} stride {stride} do not fit "
                             f"{tuple(layer.kernel.shape)} stride {layer.strides}")
        layer.set_weights([kernel, bias])
    (fc,) = network.of_kind("fc")
    model.get_layer("embedding").set_weights([np.ascontiguousarray(fc.values["weights"], np.float32)])
    return model


def probe_chips(count: int = 8, seed: int = 0) -> np.ndarray:
    """RGB uint8 ``(count, 150, 150, 3)`` chips: uniform noise and blurred noise."""
    import cv2

    rng = np.random.default_rng(seed)
    chips = rng.integers(0, 256, (count, 150, 150, 3), dtype=np.uint8)
    for i in range(count // 2, count):
        chips[i] = cv2.GaussianBlur(chips[i], (0, 0), 1.0 + i)
    return chips


def dlib_descriptors(source: Path, chips_rgb: np.ndarray) -> np.ndarray:
    """dlib's own descriptors of RGB uint8 chips ``(N, 150, 150, 3)``: float64 ``(N, 128)``."""
    import dlib

    net = dlib.face_recognition_model_v1(str(source))
    return np.array([np.array(net.compute_face_descriptor(np.ascontiguousarray(chip))) for chip in chips_rgb])


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", nargs="?", type=Path, default=None)
    parser.add_argument("--out-dir", type=Path, default=ROOT / "models")
    args = parser.parse_args(argv)
    source = args.source or default_source()
    network = load_source(source)
    model = convert(network)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / WEIGHTS_FILE
    model.save_weights(out)
    logger.info("wrote %s (%d parameters, %d bytes), sha256 %s", out, model.count_params(), out.stat().st_size,
                hashlib.sha256(out.read_bytes()).hexdigest())
    try:
        import dlib  # noqa: F401
    except ImportError:
        logger.info("dlib is not installed: no comparison with dlib itself")
        return 0
    chips = probe_chips()
    ours = np.asarray(model(chips.astype(np.float32), training=False))
    difference = float(np.abs(ours - dlib_descriptors(source, chips)).max())
    logger.info("largest descriptor difference to dlib on %d noise chips: %.2e", len(chips), difference)
    return 0


if __name__ == "__main__":
    sys.exit(main())
