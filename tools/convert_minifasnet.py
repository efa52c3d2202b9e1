"""Convert Minivision's MiniFASNet PyTorch weights into FaceApp's Keras weights (development tool).

Usage::

    python tools/convert_minifasnet.py [SOURCE_DIR] [--out-dir models]

``SOURCE_DIR`` (default ``$FACEAPP_MINIFASNET``, else ``../shared/models/minifasnet``) holds
the authors' ``2.7_80x80_MiniFASNetV2.pth`` and ``4_0_0_80x80_MiniFASNetV1SE.pth``. For each
file it checks the sha256, reads the legacy PyTorch pickle without PyTorch
(``tools/torch_legacy.py``), checks that the widths of :mod:`faceapp.vision.minifasnet` are
the state dict's, copies every tensor into the Keras layer of the same name (NCHW kernels
to NHWC, linear weights transposed, PReLU slopes to ``(1, 1, C)``), writes
``minifasnet_v2.weights.h5`` / ``minifasnet_v1se.weights.h5``, prints their sha256 and
the largest logit difference to the independent numpy forward pass
(``tools/minifasnet_reference.py``) on random and face-like inputs.
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

from minifasnet_reference import reference_logits, strip_prefix
from torch_legacy import load_state_dict

from faceapp.paths import minifasnet_dir
from faceapp.vision.liveness import MODELS, LivenessModel
from faceapp.vision.minifasnet import build_minifasnet, spec_from_shapes, torch_path

logger = logging.getLogger("convert_minifasnet")


def load_source(model: LivenessModel, directory: Path) -> dict[str, np.ndarray]:
    """The authors' state dict of ``model`` (checked sha256; no ``module.`` prefix)."""
    path = directory / model.source_file
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != model.source_sha256:
        raise SystemExit(f"{path}: sha256 {digest} is not the released file's {model.source_sha256}")
    return strip_prefix(load_state_dict(path))


def keras_values(layer, state: dict[str, np.ndarray]) -> tuple[list[np.ndarray], list[str]]:
    """The Keras weights of ``layer`` from the state dict, and the keys they came from."""
    from keras import layers

    path = torch_path(layer.name)
    if isinstance(layer, layers.BatchNormalization):
        keys = [f"{path}.{n}" for n in ("weight", "bias", "running_mean", "running_var")]
        return [state[k] for k in keys], keys
    key = f"{path}.weight"
    weight = state[key]
    if isinstance(layer, layers.DepthwiseConv2D):
        value = weight.transpose(2, 3, 0, 1)  # (C, 1, kh, kw) -> (kh, kw, C, 1)
    elif isinstance(layer, layers.Conv2D):
        value = weight.transpose(2, 3, 1, 0)  # (out, in, kh, kw) -> (kh, kw, in, out)
    elif isinstance(layer, layers.PReLU):
        value = weight.reshape(1, 1, -1)
    elif isinstance(layer, layers.Dense):
        value = weight.T
    else:
        raise SystemExit(f"layer {layer.name} ({type(layer).__name__}) has no PyTorch counterpart here")
    return [value], [key]


def convert(model: LivenessModel, state: dict[str, np.ndarray]):
    """A Keras network of ``model`` carrying the state dict's weights (every tensor used once)."""
    from faceapp.accel.device import import_tensorflow

    import_tensorflow()  # quietly, before Keras imports it
    spec = spec_from_shapes(model.name, {key: value.shape for key, value in state.items()})
    if spec != model.spec:
        raise SystemExit(f"{model.source_file}: its widths {spec} are not {model.spec}")
    network = build_minifasnet(model.spec)
    used: list[str] = []
    for layer in network.layers:
        if not layer.weights:
            continue
        values, keys = keras_values(layer, state)
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if [v.shape for v in values] != expected:
            raise SystemExit(f"{keys} -> {layer.name}: shapes {[v.shape for v in values]} do not fit {expected}")
        layer.set_weights([np.ascontiguousarray(v, np.float32) for v in values])
        used += keys
    unused = sorted(set(state) - set(used))
    if unused or len(used) != len(set(used)):
        raise SystemExit(f"{model.source_file}: tensors not copied exactly once: {unused}")
    return network


def probe_inputs(count: int = 8, seed: int = 0) -> np.ndarray:
    """BGR float ``(count, 80, 80, 3)`` inputs: uniform noise 0..255 and blurred noise."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (count, 80, 80, 3)).astype(np.float32)
    for i in range(count // 2, count):
        noise[i] = cv2.GaussianBlur(noise[i], (0, 0), 1.0 + i)
    return noise


def largest_difference(network, state: dict[str, np.ndarray], inputs: np.ndarray) -> float:
    """Largest |Keras logits - numpy reference logits| on BGR NHWC ``inputs``."""
    ours = np.asarray(network(inputs, training=False))
    theirs = reference_logits(state, inputs.transpose(0, 3, 1, 2))
    return float(np.abs(ours - theirs).max())


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", nargs="?", type=Path, default=None)
    parser.add_argument("--out-dir", type=Path, default=ROOT / "models")
    args = parser.parse_args(argv)
    source = args.source or minifasnet_dir()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for model in MODELS:
        state = load_source(model, source)
        network = convert(model, state)
        out = args.out_dir / model.weights_file
        network.save_weights(out)
        parameters = sum(v.size for k, v in state.items() if not k.endswith(("running_mean", "running_var")))
        logger.info("%s: wrote %s (%d parameters), sha256 %s", model.name, out, parameters,
                    hashlib.sha256(out.read_bytes()).hexdigest())
        logger.info("%s: largest logit difference to the numpy reference: %.2e", model.name,
                    largest_difference(network, state, probe_inputs()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
