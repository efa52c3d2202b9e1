"""Convert the shipped YuNet ONNX file into FaceApp's Keras weights (development tool).

Usage::

    python tools/convert_yunet.py [models/face_detection_yunet_2023mar.onnx]

It checks the source's sha256, copies the weights of the ONNX graph's 53 ``Conv`` nodes,
in graph order, into the layers of :func:`faceapp.vision.yunet_net.build_yunet` (NCHW
kernels to Keras' NHWC; grouped convolutions with one group per channel become depthwise
kernels), writes ``models/yunet_2023mar.weights.h5``, prints its sha256, and reports the
largest difference of the raw outputs to onnxruntime on a real-looking input. Needs the
``onnx`` package (a development dependency) and ``onnxruntime`` for the check.
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

from faceapp.vision.detection import YUNET_FILE, YUNET_SHA256
from faceapp.vision.yunet_net import CONV_ORDER, STRIDES, build_yunet

logger = logging.getLogger("convert_yunet")
OUT = ROOT / "models" / "yunet_2023mar.weights.h5"


def conv_weights(path: Path) -> list[tuple[str, np.ndarray, np.ndarray, int]]:
    """(node name, kernel (out, in/groups, kh, kw), bias (out,), groups) of each Conv node, in graph order."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    initializers = {init.name: numpy_helper.to_array(init).astype(np.float32) for init in graph.initializer}
    convs = []
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        groups = next((onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == "group"), 1)
        convs.append((node.name, initializers[node.input[1]], initializers[node.input[2]], int(groups)))
    return convs


def convert(path: Path):
    """A Keras YuNet carrying the ONNX file's weights."""
    model = build_yunet()
    convs = conv_weights(path)
    if len(convs) != len(CONV_ORDER):
        raise SystemExit(f"{path}: {len(convs)} Conv nodes, the architecture has {len(CONV_ORDER)}")
    for layer_name, (node, kernel, bias, groups) in zip(CONV_ORDER, convs, strict=True):
        layer = model.get_layer(layer_name)
        if groups == 1 and not (kernel.shape[0] == 1 and layer_name.endswith("_dw")):
            value = kernel.transpose(2, 3, 1, 0)  # (kh, kw, in, out)
        elif groups == kernel.shape[0] and kernel.shape[1] == 1:
            value = kernel.transpose(2, 3, 0, 1)  # depthwise: (kh, kw, C, 1)
        else:
            raise SystemExit(f"{node}: groups {groups} with kernel {kernel.shape} has no Keras counterpart here")
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if expected != [value.shape, bias.shape]:
            raise SystemExit(f"{node} -> {layer_name}: shapes {value.shape}, {bias.shape} do not fit {expected}")
        layer.set_weights([value, bias])
    return model


def onnx_outputs(path: Path, image: np.ndarray) -> np.ndarray:
    """onnxruntime's raw outputs for a BGR float ``(640, 640, 3)`` image, in the Keras model's layout."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = dict(zip(names, session.run(None, {"input": image.transpose(2, 0, 1)[None]}), strict=True))
    levels = []
    for stride in STRIDES:
        parts = [values[f"{head}_{stride}"][0] for head in ("cls", "obj", "bbox", "kps")]
        levels.append(np.concatenate(parts, axis=1))
    return np.concatenate(levels)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("onnx", nargs="?", type=Path, default=ROOT / "models" / YUNET_FILE)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    digest = hashlib.sha256(args.onnx.read_bytes()).hexdigest()
    if digest != YUNET_SHA256:
        raise SystemExit(f"{args.onnx}: sha256 {digest} is not the 2023mar file's {YUNET_SHA256}")
    model = convert(args.onnx)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(args.out)
    logger.info("wrote %s (%d parameters), sha256 %s", args.out, model.count_params(),
                hashlib.sha256(args.out.read_bytes()).hexdigest())
    import cv2

    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.uniform(0, 255, (640, 640, 3)).astype(np.float32), (0, 0), 3)
    ours = np.concatenate([level.numpy()[0].reshape(-1, 16) for level in model(image[None])])
    theirs = onnx_outputs(args.onnx, image)
    logger.info("largest difference to onnxruntime over %d anchors x 16 outputs: %.2e", len(ours),
                float(np.abs(ours - theirs).max()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
