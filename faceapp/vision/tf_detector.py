"""YuNet in TensorFlow: our Keras port (:mod:`faceapp.vision.yunet_net`) run by LiteRT with
XNNPACK on the CPU, or by TensorFlow on a GPU, with OpenCV's post-processing redone in
numpy (:mod:`faceapp.vision.yunet_decode`).

It finds the same faces as ``cv2.FaceDetectorYN`` on the same image, boxes and landmarks
within 0.5 px (``tests/test_tf_detector.py``, on real photos). The frame is padded at its
bottom and right to multiples of 32 with zeros, as OpenCV does; the network sees BGR
values 0..255.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np

from faceapp.accel.device import DeviceChoice, choose_device, import_tensorflow
from faceapp.accel.keras_run import load_weights, tf_runner
from faceapp.checksums import verified_file
from faceapp.errors import ModelError
from faceapp.paths import DEFAULT_MODEL_DIR, cache_dir, model_dir
from faceapp.vision.detection import Detector, DetectorConfig
from faceapp.vision.yunet_decode import Decoder
from faceapp.vision.yunet_net import ARCHITECTURE_VERSION, DIVISOR, build_yunet

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "yunet_2023mar.weights.h5"
WEIGHTS_SHA256 = "4b114b4cd0c63c926716a2a41b122226cd64d9bd08784f39967163f358149699"


def weights_path(directory: str | os.PathLike | None = None) -> Path:
    """The verified Keras weights of YuNet: the model directory's own copy, else the shipped one."""
    for root in (model_dir(directory), DEFAULT_MODEL_DIR):
        candidate = root / WEIGHTS_FILE
        if candidate.exists():
            return verified_file(candidate, WEIGHTS_SHA256, "YuNet detector weights")
    raise ModelError(f"YuNet detector weights are missing: {DEFAULT_MODEL_DIR / WEIGHTS_FILE}")


def tf_detector_available() -> bool:
    """Whether a runtime for this detector can be imported (LiteRT or TensorFlow)."""
    import importlib.util

    return any(importlib.util.find_spec(name) is not None for name in ("ai_edge_litert", "tensorflow"))


def load_keras_yunet(path: Path):
    """The Keras YuNet (any input size) carrying the weights at ``path``."""
    import_tensorflow()  # before Keras imports it, so that its CUDA-probing noise stays hidden
    return load_weights(build_yunet(), path, "YuNet detector weights")


def padded_size(height: int, width: int) -> tuple[int, int]:
    """The input size OpenCV's detector uses for an image: each side rounded up to a multiple of 32."""
    return (-(-height // DIVISOR) * DIVISOR, -(-width // DIVISOR) * DIVISOR)


class TfYuNetDetector(Detector):
    """YuNet on LiteRT (CPU) or TensorFlow (GPU). One instance per thread is cheapest; a
    lock makes sharing one safe. ``runtime`` "tensorflow" runs plain TensorFlow on the CPU
    too (what a GPU runs, testable without one)."""

    def __init__(self, weights: str | Path, config: DetectorConfig | None = None, device: str = "auto",
                 choice: DeviceChoice | None = None, runtime: str = "auto"):
        super().__init__(config)
        self.weights = Path(weights)
        verified_file(self.weights, WEIGHTS_SHA256, "YuNet detector weights")
        self.choice = choice or choose_device(device)
        self._decode = Decoder(self.config.score_threshold, self.config.nms_threshold, self.config.top_k)
        self._lock = threading.Lock()
        self._buffer = np.zeros((1, 0, 0, 3), np.float32)
        self.keras_model = None
        if runtime not in ("auto", "litert", "tensorflow"):
            raise ModelError(f"runtime must be auto, litert or tensorflow, got {runtime!r}")
        if self.choice.kind == "gpu" or runtime == "tensorflow":
            self._run = self._tensorflow_runner()
            self.name = f"TensorFlow ({self.choice.tf_device.strip('/')})"
        else:
            self._run = self._litert_runner()
            self.name = "TensorFlow (LiteRT/XNNPACK)" if self._litert else "TensorFlow (CPU)"

    def _litert_runner(self):
        from faceapp.accel.litert import Runner, cached_interpreter, litert_available

        self._litert = litert_available()
        if not self._litert:
            logger.warning("LiteRT is not installed: the TensorFlow detector runs on plain TensorFlow (slower)")
            return self._tensorflow_runner()
        path = cache_dir() / f"yunet-2023mar-{WEIGHTS_SHA256[:16]}-a{ARCHITECTURE_VERSION}.tflite"
        runner = Runner(cached_interpreter(path, lambda: load_keras_yunet(self.weights), "YuNet detector"))

        def run(batch: np.ndarray) -> list[np.ndarray]:
            # The flatbuffer's output order is not the model's: the levels by grid size, finest first.
            return sorted(runner(batch), key=lambda level: -level.shape[1])

        return run

    def _tensorflow_runner(self):
        tf = import_tensorflow()
        with tf.device(self.choice.tf_device):
            model = load_keras_yunet(self.weights)
        self.keras_model = model  # for programs that detect on the device (recognition.frame_program)
        return tf_runner(model, self.choice.tf_device, [1, None, None, 3])

    def decode(self, maps: list[np.ndarray]) -> np.ndarray:
        """The network's three maps (stride 8, 16, 32) -> ``cv2.FaceDetectorYN``-style rows."""
        return self._decode(maps)

    def raw(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        size = padded_size(height, width)
        with self._lock:
            if self._buffer.shape[1:3] != size:
                self._buffer = np.zeros((1, *size, 3), np.float32)
            self._buffer[0, :height, :width] = image
            self._buffer[0, height:] = 0  # the padding (a previous frame may have been larger)
            self._buffer[0, :height, width:] = 0
            return self._decode(self._run(self._buffer))
