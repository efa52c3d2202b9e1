"""Passive anti-spoofing ("is this a live face or a photo / a screen?") with Minivision's
MiniFASNetV2 and MiniFASNetV1SE (:mod:`faceapp.vision.minifasnet`), as the authors run them.

For each face, each network gets its own crop: the detector's box enlarged about its
centre by the network's scale (2.7 for V2, 4.0 for V1SE; less when the image is too
small for it), shifted to stay inside the image and clipped to it, resized to 80x80
(bilinear), **BGR** values 0..255 as floats. The score is the mean of the two softmax
probabilities of class 1 ("real"); classes 0 and 2 are spoofs. ``is_live`` is
``score >= threshold`` (0.5 by default, which also makes class 1 the authors' argmax).

The networks run under LiteRT with XNNPACK on the CPU (a flatbuffer converted once and
cached, keyed by the weights' sha256 and the architecture version) or under TensorFlow
on a GPU, like the SFace embedding and our YuNet. Accuracy on real attacks has not
been measured here (see ``models/README.md``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceapp.accel.device import DeviceChoice, choose_device, import_tensorflow
from faceapp.accel.keras_run import load_weights, tf_runner
from faceapp.checksums import verified_file
from faceapp.errors import ModelError
from faceapp.paths import DEFAULT_MODEL_DIR, cache_dir, model_dir
from faceapp.types import Detection
from faceapp.vision.minifasnet import (
    ARCHITECTURE_VERSION,
    INPUT_SIZE,
    MINIFASNET_V1SE,
    MINIFASNET_V2,
    MiniFASNetSpec,
    build_minifasnet,
)

logger = logging.getLogger(__name__)

REAL_CLASS = 1
DEFAULT_THRESHOLD = 0.5
RUNTIMES = ("auto", "litert", "tensorflow")


@dataclass(frozen=True)
class LivenessModel:
    """One of the two networks: its architecture, crop scale, shipped weights and source."""

    spec: MiniFASNetSpec
    scale: float
    weights_file: str
    weights_sha256: str
    source_file: str  # the authors' PyTorch file (tools/convert_minifasnet.py reads it)
    source_sha256: str

    @property
    def name(self) -> str:
        return self.spec.name


MODELS: tuple[LivenessModel, ...] = (
    LivenessModel(MINIFASNET_V2, 2.7, "minifasnet_v2.weights.h5",
                  "c90503e003610c38590e41d6e50b9164b07efc552e59cf2fe464b113e1228ff7",
                  "2.7_80x80_MiniFASNetV2.pth",
                  "a5eb02e1843f19b5386b953cc4c9f011c3f985d0ee2bb9819eea9a142099bec0"),
    LivenessModel(MINIFASNET_V1SE, 4.0, "minifasnet_v1se.weights.h5",
                  "ad5f5ce00aeef42e8304a4d33824b3fa740c88943c267ee2458112041e4d6fe7",
                  "4_0_0_80x80_MiniFASNetV1SE.pth",
                  "84ee1d37d96894d5e82de5a57df044ef80a58be2b218b5ed7cdfd875ec2f5990"),
)


@dataclass(frozen=True)
class LivenessResult:
    """The verdict on one face.

    ``score``: mean over the networks of P(real), in [0, 1]. ``is_live``: ``score >=``
    the checker's threshold. ``per_model``: each network's softmax, float32 ``(3,)``
    (P(spoof, class 0), P(real), P(spoof, class 2)), by network name.
    """

    score: float
    is_live: bool
    per_model: Mapping[str, np.ndarray] = field(repr=False, compare=False)


def weights_path(model: LivenessModel, directory: str | os.PathLike | None = None) -> Path:
    """The verified Keras weights of ``model``: the model directory's copy, else the shipped one."""
    for root in (model_dir(directory), DEFAULT_MODEL_DIR):
        candidate = root / model.weights_file
        if candidate.exists():
            return verified_file(candidate, model.weights_sha256, f"{model.name} liveness weights")
    raise ModelError(f"{model.name} liveness weights are missing: {DEFAULT_MODEL_DIR / model.weights_file}")


def load_keras_minifasnet(model: LivenessModel, path: Path):
    """The Keras network of ``model`` carrying the weights at ``path``."""
    import_tensorflow()  # before Keras imports it, so that its CUDA-probing noise stays hidden
    return load_weights(build_minifasnet(model.spec), path, f"{model.name} liveness weights")


def crop_region(image_size: tuple[int, int], box: tuple[float, float, float, float],
                scale: float) -> tuple[int, int, int, int]:
    """The authors' crop of ``box`` (x, y, w, h in pixels) in an image of ``image_size``
    (width, height): ``(left, top, right, bottom)``, integer pixels, *inclusive*.

    The box is scaled about its centre by ``scale``, capped so that it fits the image
    (``(side - 1) / box side``), shifted back inside the image, then truncated to int."""
    width, height = image_size
    x, y, box_w, box_h = (float(v) for v in box)
    if not (box_w > 0 and box_h > 0 and width > 1 and height > 1):
        raise ValueError(f"cannot crop box {box} in a {width}x{height} image")
    scale = min((height - 1) / box_h, (width - 1) / box_w, scale)
    new_w, new_h = box_w * scale, box_h * scale
    centre_x, centre_y = x + box_w / 2, y + box_h / 2
    left, top = centre_x - new_w / 2, centre_y - new_h / 2
    right, bottom = centre_x + new_w / 2, centre_y + new_h / 2
    if left < 0:
        right, left = right - left, 0.0
    if top < 0:
        bottom, top = bottom - top, 0.0
    if right > width - 1:
        left, right = left - (right - width + 1), float(width - 1)
    if bottom > height - 1:
        top, bottom = top - (bottom - height + 1), float(height - 1)
    return int(left), int(top), int(right), int(bottom)


def crop_face(image_bgr: np.ndarray, box: tuple[float, float, float, float], scale: float,
              size: int = INPUT_SIZE) -> np.ndarray:
    """The network input for one face: BGR uint8 ``(H, W, 3)`` image -> BGR uint8
    ``(size, size, 3)`` (see :func:`crop_region`; bilinear resize, as ``cv2.resize``)."""
    import cv2

    height, width = image_bgr.shape[:2]
    left, top, right, bottom = crop_region((width, height), box, scale)
    return cv2.resize(image_bgr[top:bottom + 1, left:right + 1], (size, size))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of float ``(N, K)`` logits (float32)."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)


class LivenessChecker:
    """Scores faces as live or spoofed with both networks (see the module docstring).

    ``runtime`` "auto" runs LiteRT on the CPU and TensorFlow on a GPU; "tensorflow" runs
    plain TensorFlow on the CPU too (what a GPU runs, testable without one). Thread-safe
    (one lock); one instance per thread is cheapest.
    """

    def __init__(self, directory: str | os.PathLike | None = None, *, threshold: float = DEFAULT_THRESHOLD,
                 device: str = "auto", choice: DeviceChoice | None = None, runtime: str = "auto",
                 max_batch: int = 16):
        if runtime not in RUNTIMES:
            raise ModelError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"the liveness threshold must be in [0, 1], got {threshold}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.threshold = threshold
        self.max_batch = max_batch
        self.choice = choice or choose_device(device)
        self._lock = threading.Lock()
        paths = {model.name: weights_path(model, directory) for model in MODELS}
        use_litert = self.choice.kind == "cpu" and runtime in ("auto", "litert")
        if use_litert:
            from faceapp.accel.litert import litert_available

            if not litert_available():
                if runtime == "litert":
                    raise ModelError("the LiteRT runtime is not installed (pip install ai-edge-litert)")
                logger.warning("LiteRT is not installed: the liveness networks run on plain TensorFlow (slower)")
                use_litert = False
        make = self._litert_runner if use_litert else self._tensorflow_runner
        self._runs: dict[str, Callable[[np.ndarray], np.ndarray]] = {
            model.name: make(model, paths[model.name]) for model in MODELS}
        self.backend = "litert" if use_litert else "tensorflow"
        self.name = ("CPU (LiteRT/XNNPACK)" if use_litert
                     else f"{self.choice.tf_device.strip('/')} (TensorFlow)")
        logger.info("liveness networks (%s) on %s", ", ".join(self._runs), self.name)

    # -- backends ---------------------------------------------------------------
    def _litert_runner(self, model: LivenessModel, path: Path) -> Callable[[np.ndarray], np.ndarray]:
        from faceapp.accel.litert import Runner, cached_interpreter

        tag = model.name.lower()
        flatbuffer = cache_dir() / f"{tag}-{model.weights_sha256[:16]}-a{ARCHITECTURE_VERSION}.tflite"
        runner = Runner(cached_interpreter(flatbuffer, lambda: load_keras_minifasnet(model, path),
                                           f"{model.name} liveness network"))
        return lambda batch: runner(batch)[0]

    def _tensorflow_runner(self, model: LivenessModel, path: Path) -> Callable[[np.ndarray], np.ndarray]:
        tf = import_tensorflow()
        with tf.device(self.choice.tf_device):
            network = load_keras_minifasnet(model, path)
        return tf_runner(network, self.choice.tf_device, [None, INPUT_SIZE, INPUT_SIZE, 3])

    # -- public -----------------------------------------------------------------
    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(self._runs)

    def logits(self, name: str, crops_bgr: np.ndarray) -> np.ndarray:
        """Network ``name``'s raw logits: BGR ``(N, 80, 80, 3)`` crops (uint8 or float
        0..255) -> float32 ``(N, 3)``. ``N`` may be 0."""
        crops = np.asarray(crops_bgr)
        if crops.ndim != 4 or crops.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
            raise ValueError(f"expected crops of shape (N, {INPUT_SIZE}, {INPUT_SIZE}, 3), got {crops.shape}")
        if len(crops) == 0:
            return np.zeros((0, 3), np.float32)
        batch = np.ascontiguousarray(crops, dtype=np.float32)
        run = self._runs[name]
        with self._lock:
            chunks = [run(batch[start:start + self.max_batch]) for start in range(0, len(batch), self.max_batch)]
        return np.concatenate(chunks).astype(np.float32, copy=False)

    def check_many(self, image_bgr: np.ndarray, detections: Sequence[Detection]) -> list[LivenessResult]:
        """One result per detection in ``image_bgr`` (BGR uint8 ``(H, W, 3)``, the frame
        the boxes were found in), each network run once on all faces' crops."""
        if not detections:
            return []
        per_model = {}
        for model in MODELS:
            crops = np.stack([crop_face(image_bgr, d.box, model.scale) for d in detections])
            per_model[model.name] = softmax(self.logits(model.name, crops))
        score = np.mean([probs[:, REAL_CLASS] for probs in per_model.values()], axis=0)
        return [
            LivenessResult(float(score[i]), bool(score[i] >= self.threshold),
                           {name: probs[i] for name, probs in per_model.items()})
            for i in range(len(detections))
        ]

    def check(self, image_bgr: np.ndarray, detection: Detection) -> LivenessResult:
        """The verdict on one face (see :meth:`check_many`)."""
        return self.check_many(image_bgr, [detection])[0]
