"""A frame's work as TensorFlow programs on the device (a GPU): the frame is uploaded once.

:class:`FrameProgram` holds our TensorFlow YuNet and the embedding network, both running
in TensorFlow on the same device, and splits a frame's work where the live loop must
decide in between (tracking chooses which faces need an embedding):

1. :meth:`FrameProgram.detect` uploads the BGR uint8 frame, and in one ``tf.function``
   shrinks it to the working resolution (area averaging, like ``cv2.INTER_AREA``), pads
   it to multiples of 32 and runs YuNet; only the three small score maps come back, which
   :class:`~faceapp.vision.yunet_decode.Decoder` turns into detections (OpenCV's
   arithmetic) in the full frame's pixels. The uploaded frame stays on the device.
2. :meth:`FrameProgram.align_embed` takes the similarity transforms of the faces that
   need an embedding (computed from their landmarks exactly as
   :func:`~faceapp.vision.alignment.align_face` does), and in one ``tf.function`` warps
   all of them from the resident frame (bilinear, zero outside, as ``cv2.warpAffine``),
   rounds the crops to 8 bits as OpenCV's would be, and embeds them in one batch; the
   crops (for thumbnails) and unit embeddings come back.

Used by :class:`~faceapp.recognition.pipeline.Recognizer` when both networks run in
TensorFlow on a GPU; it runs the same on TensorFlow's CPU kernels, which is how
``tests/test_frame_program.py`` checks it against the plain pipeline without a GPU.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from faceapp.accel.device import import_tensorflow
from faceapp.types import AlignedFace, Detection
from faceapp.vision.alignment import ALIGNED_SIZE, ARCFACE_TEMPLATE, similarity_transform
from faceapp.vision.tf_detector import padded_size

logger = logging.getLogger(__name__)


def inverse_affine(matrix: np.ndarray) -> np.ndarray:
    """The 2x3 map from output to input pixels of the 2x3 forward ``matrix`` (what
    ``cv2.warpAffine`` samples with)."""
    full = np.vstack([np.asarray(matrix, np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


class FrameProgram:
    """See the module docstring. ``detector``: a :class:`~faceapp.vision.tf_detector.TfYuNetDetector`
    running TensorFlow; ``embedder``: an :class:`~faceapp.embedding.runtime.Embedder` on the
    TensorFlow backend, on the same device. One frame at a time (a lock)."""

    def __init__(self, detector, embedder):
        if detector.keras_model is None or embedder.keras_model is None:
            raise ValueError("the frame program needs both networks in TensorFlow (not LiteRT)")
        self.detector, self.embedder = detector, embedder
        self.device = embedder.choice.tf_device
        self._lock = threading.Lock()
        self._frame = None  # the resident frame tensor, and the array it came from (held: no id reuse)
        self._frame_of: np.ndarray | None = None
        tf = import_tensorflow()
        yunet, sface = detector.keras_model, embedder.keras_model

        @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8), tf.TensorSpec([2], tf.int32),
                                      tf.TensorSpec([2], tf.int32)], reduce_retracing=True)
        def detect(frame, size, padded):
            image = tf.cast(frame, tf.float32)[None]
            shape = tf.shape(image)[1:3]
            image = tf.cond(tf.reduce_all(tf.equal(shape, size)), lambda: image,
                            lambda: tf.round(tf.image.resize(image, size, method="area")))
            image = tf.pad(image, [[0, 0], [0, padded[0] - size[0]], [0, padded[1] - size[1]], [0, 0]])
            return yunet(image, training=False)

        @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8), tf.TensorSpec([None, 2, 3], tf.float32)],
                     reduce_retracing=True)
        def align_embed(frame, inverse):
            crops = _warp(tf, tf.cast(frame, tf.float32), inverse, ALIGNED_SIZE)
            crops = tf.clip_by_value(tf.round(crops), 0.0, 255.0)
            raw = sface(crops[..., ::-1], training=False)  # the network takes RGB
            raw = tf.cast(raw, tf.float32)
            return tf.cast(crops, tf.uint8), raw / tf.maximum(tf.norm(raw, axis=1, keepdims=True), 1e-12)

        self._detect, self._align_embed = detect, align_embed

    def detect(self, image: np.ndarray, video: bool = False) -> list[Detection]:
        """As :meth:`~faceapp.vision.detection.Detector.detect`, with the frame left on the device."""
        tf = import_tensorflow()
        size = self.detector.detection_size(image, video)
        with self._lock, tf.device(self.device):
            frame = tf.constant(image)
            maps = [m.numpy() for m in self._detect(frame, tf.constant(size, tf.int32), tf.constant(padded_size(*size), tf.int32))]
            self._frame, self._frame_of = frame, image
        return self.detector.detections_in(self.detector.decode(maps), size, image.shape[:2])

    def align_embed(self, image: np.ndarray, detections: list[Detection]) -> tuple[list[AlignedFace], np.ndarray]:
        """The aligned faces of ``detections`` and their unit embeddings (float32 ``(N, D)``),
        from the frame :meth:`detect` left on the device when ``image`` is that frame."""
        tf = import_tensorflow()
        if not detections:
            return [], np.zeros((0, self.embedder.dim), np.float32)
        inverse = np.stack([inverse_affine(similarity_transform(np.asarray(d.landmarks, np.float64).reshape(5, 2),
                                                                ARCFACE_TEMPLATE)) for d in detections]).astype(np.float32)
        with self._lock, tf.device(self.device):
            frame = self._frame if self._frame_of is image and self._frame is not None else tf.constant(image)
            crops, embeddings = self._align_embed(frame, tf.constant(inverse))
            crops, embeddings = crops.numpy(), embeddings.numpy()
        from faceapp.vision.face_crop import wide_crop

        # The wide crops (for thumbnails only) are cut on the host: the frame is there too.
        return [AlignedFace(crop, d, wide=wide_crop(image, d.landmarks)) for crop, d in zip(crops, detections, strict=True)], embeddings


def _warp(tf, image, inverse, size: int):
    """Bilinear samples of float ``image`` ``(H, W, C)`` at ``inverse @ (x, y, 1)`` for each
    output pixel of ``size`` x ``size`` and each ``(N, 2, 3)`` map; zero outside the image,
    each of the four neighbours on its own (``cv2.warpAffine`` with ``BORDER_CONSTANT``)."""
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    ys, xs = tf.meshgrid(tf.range(size, dtype=tf.float32), tf.range(size, dtype=tf.float32), indexing="ij")
    points = tf.stack([tf.reshape(xs, [-1]), tf.reshape(ys, [-1]), tf.ones([size * size])], axis=0)  # (3, S*S)
    source = tf.einsum("nij,jp->nip", inverse, points)  # (N, 2, S*S)
    sx, sy = source[:, 0], source[:, 1]
    x0, y0 = tf.floor(sx), tf.floor(sy)
    fx, fy = sx - x0, sy - y0
    x0, y0 = tf.cast(x0, tf.int32), tf.cast(y0, tf.int32)
    flat = tf.reshape(image, [-1, tf.shape(image)[2]])

    def sample(x, y):
        inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
        index = tf.clip_by_value(y, 0, height - 1) * width + tf.clip_by_value(x, 0, width - 1)
        return tf.gather(flat, index) * tf.cast(inside, tf.float32)[..., None]

    top = sample(x0, y0) * (1 - fx)[..., None] + sample(x0 + 1, y0) * fx[..., None]
    bottom = sample(x0, y0 + 1) * (1 - fx)[..., None] + sample(x0 + 1, y0 + 1) * fx[..., None]
    pixels = top * (1 - fy)[..., None] + bottom * fy[..., None]  # (N, S*S, C)
    return tf.reshape(pixels, [-1, size, size, tf.shape(image)[2]])
