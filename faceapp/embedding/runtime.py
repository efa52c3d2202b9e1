"""Run an embedding network (SFace, dlib's ResNet, an imported ONNX graph: :mod:`faceapp.embedding.architectures`) on batches of crops.

:class:`Embedder` loads the Keras model from a model directory's weights and runs it:

* on a GPU through one ``tf.function`` traced once for any batch size;
* on the CPU through LiteRT + XNNPACK on a flatbuffer converted from the same Keras
  model (batch norms folded). The conversion takes a few seconds and is cached in the
  user cache directory, keyed by the weights' sha256, so it happens once per model.
  ``backend="tensorflow"`` forces plain TensorFlow on the CPU too.

Both paths compute the same function as the original network (SFace: OpenCV Zoo's ONNX
file, tested to 1e-4; dlib's ResNet: dlib itself, tested to 1e-4).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from faceapp.accel.device import DeviceChoice, choose_device, import_tensorflow
from faceapp.accel.keras_run import load_weights, tf_runner
from faceapp.accel.litert import Runner, cached_interpreter, convert_to_litert, litert_available
from faceapp.checksums import sha256_of, verified_file
from faceapp.embedding.architectures import Architecture, architecture
from faceapp.embedding.modelcard import EmbeddingCard
from faceapp.errors import ModelError
from faceapp.paths import cache_dir

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "tensorflow", "litert")
PRECISIONS = ("auto", "float32", "mixed")
MIXED_TOLERANCE = 1e-3  # max |difference| of unit embeddings allowed for mixed precision


def card_architecture(card: EmbeddingCard) -> Architecture:
    """The network a card names; ModelError (one line) for an unknown one."""
    try:
        return architecture(card.architecture)
    except KeyError:
        raise ModelError(f"unsupported architecture {card.architecture!r} in {card.directory}") from None


def load_keras_model(card: EmbeddingCard):
    """The trainable Keras model (with batch norms) carrying the card's weights."""
    arch = card_architecture(card)
    weights = verified_file(card.weights, card.weights_sha256, f"embedding model {card.model_id!r} weights")
    import_tensorflow()  # before Keras imports it, so that its CUDA-probing noise stays hidden
    if arch.load_trainable is not None:  # the weights file is the whole model (onnx_graph)
        return arch.load_trainable(weights)
    return load_weights(arch.build_trainable(), weights, "embedding weights")


class Embedder:
    """Maps crops to unit-length embeddings. Thread-safe.

    ``embed(faces)``: BGR uint8 ``(N, S, S, 3)`` (``S`` = :attr:`input_size`: 112 for SFace's
    aligned faces, 150 for dlib's chips) -> float32 ``(N, D)``, each row of L2 norm 1.
    ``N`` may be 0.
    """

    #: Whether ``embed`` also wants dlib's chips (only the fused model's EnsembleEmbedder does).
    needs_chip = False

    def __init__(self, card: EmbeddingCard, device: str = "auto", backend: str = "auto", max_batch: int = 32, precision: str = "auto"):
        if backend not in BACKENDS:
            raise ModelError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if precision not in PRECISIONS:
            raise ModelError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.precision = "float32"
        self.card = card
        self.architecture = card_architecture(card)
        self.input_size = self.architecture.input_size
        self.model_id = card.model_id
        self.dim = card.embedding_dim
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self.choice: DeviceChoice = choose_device(device)
        verified_file(card.weights, card.weights_sha256, f"embedding model {card.model_id!r} weights")
        use_litert = self.choice.kind == "cpu" and backend in ("auto", "litert")
        if use_litert and not litert_available():
            if backend == "litert":
                raise ModelError("the LiteRT runtime is not installed (pip install ai-edge-litert)")
            logger.warning("LiteRT is not installed on this platform: the embedding runs on plain TensorFlow (slower)")
            use_litert = False
        keras_model = None if use_litert and self._cached_flatbuffer().exists() else load_keras_model(card)
        if use_litert:
            self._run = self._litert_runner(keras_model)
            self.backend = "litert"
        else:
            self._run = self._tensorflow_runner(keras_model)
            self.backend = "tensorflow"
            # Mixed precision only pays on a GPU; "auto" keeps it only if it stays close.
            wanted = self.architecture.mixed_precision and (precision == "mixed" or (precision == "auto" and self.choice.kind == "gpu"))
            if wanted:
                mixed = self._tensorflow_runner(keras_model, dtype_policy="mixed_float16")
                error = self._disagreement(self._run, mixed)
                if precision == "mixed" or error <= MIXED_TOLERANCE:
                    self._run, self.precision = mixed, "mixed_float16"
                logger.info("mixed precision: max embedding difference %.2e -> %s", error, self.precision)
        logger.info("embedding model %s on %s", self.model_id, self.device_name)

    @property
    def device_name(self) -> str:
        """Human-readable, e.g. "CPU (LiteRT/XNNPACK)" or "GPU:0 (TensorFlow)"."""
        if self.backend == "litert":
            return "CPU (LiteRT/XNNPACK)"
        suffix = ", mixed precision" if self.precision != "float32" else ""
        return f"{self.choice.tf_device.strip('/')} (TensorFlow{suffix})"

    def _disagreement(self, reference, candidate, count: int = 16) -> float:
        """Largest |difference| between two runners' unit embeddings on probe faces
        (smoothed noise: face-like statistics without shipping any face)."""
        import cv2

        rng = np.random.default_rng(0)
        side = self.input_size
        probes = np.stack([
            cv2.GaussianBlur(rng.uniform(0, 255, (side, side, 3)).astype(np.float32), (0, 0), sigma)
            for sigma in np.linspace(0.5, 4.0, count)
        ])

        def unit(values: np.ndarray) -> np.ndarray:
            return values / np.linalg.norm(values, axis=1, keepdims=True)

        return float(np.abs(unit(reference(probes)) - unit(candidate(probes))).max())

    # -- public -----------------------------------------------------------------
    def embed(self, faces: np.ndarray) -> np.ndarray:
        faces = np.asarray(faces)
        side = self.input_size
        if faces.ndim != 4 or faces.shape[1:] != (side, side, 3):
            raise ValueError(f"expected aligned faces of shape (N, {side}, {side}, 3), got {faces.shape}")
        if len(faces) == 0:
            return np.zeros((0, self.dim), np.float32)
        rgb = self.architecture.to_input(faces)
        chunks = []
        with self._lock:
            for start in range(0, len(rgb), self.max_batch):
                chunks.append(self._run(rgb[start : start + self.max_batch]))
        raw = np.concatenate(chunks).astype(np.float32, copy=False)
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        return raw / np.maximum(norms, 1e-12)

    # -- backends ---------------------------------------------------------------
    def _tensorflow_runner(self, keras_model, dtype_policy: str | None = None):
        tf = import_tensorflow()

        side = self.input_size
        with tf.device(self.choice.tf_device):
            model = self.architecture.build_inference(keras_model, dtype_policy)
        return tf_runner(model, self.choice.tf_device, [None, side, side, 3])

    @property
    def keras_model(self):
        """The folded Keras network this embedder runs in TensorFlow (the network's float32
        input ``(N, S, S, 3)`` in, raw ``(N, D)`` out), or None under LiteRT."""
        return getattr(self._run, "keras_model", None)

    def _cached_flatbuffer(self) -> Path:
        digest = self.card.weights_sha256 or (sha256_of(self.card.weights) if self.card.weights.is_file() else "missing")
        arch = self.architecture
        kind = "" if arch.name == "sface" else f"-{arch.name}"
        return cache_dir() / f"{self.card.model_id}{kind}-{digest[:16]}-a{arch.version}.tflite"

    def _litert_runner(self, keras_model):
        build = self.architecture.build_inference
        path = self._cached_flatbuffer()
        if keras_model is not None:  # a fresh conversion was asked for (no cached file)
            convert_to_litert(build(keras_model, None), path, "embedding model")

        def make_model():  # batch norms folded
            return build(load_keras_model(self.card), None)

        runner = Runner(cached_interpreter(path, make_model, "embedding model"))
        return lambda batch: runner(batch)[0]
