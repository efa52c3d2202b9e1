"""Face detection with YuNet (OpenCV Zoo): the shared frame handling (working resolution,
smallest face, mapping back) and OpenCV's DNN backend; our TensorFlow/LiteRT port of the
same network is :mod:`faceapp.vision.tf_detector`."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceapp.checksums import verified_file
from faceapp.errors import ModelError
from faceapp.paths import DEFAULT_MODEL_DIR, model_dir
from faceapp.types import Detection

logger = logging.getLogger(__name__)

YUNET_FILE = "face_detection_yunet_2023mar.onnx"
YUNET_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"


def yunet_path(directory: str | os.PathLike | None = None) -> Path:
    """The verified YuNet detector file: the chosen model directory's own copy if it has
    one, else the shipped one."""
    for root in (model_dir(directory), DEFAULT_MODEL_DIR):
        candidate = root / YUNET_FILE
        if candidate.exists():
            return verified_file(candidate, YUNET_SHA256, "YuNet face detector")
    raise ModelError(f"YuNet face detector file is missing: {DEFAULT_MODEL_DIR / YUNET_FILE}")


#: Detector choices: OpenCV's DNN running the ONNX file, or our TensorFlow/LiteRT port of it.
DETECTORS = ("auto", "opencv", "tf")


@dataclass(frozen=True)
class DetectorConfig:
    """YuNet options. ``min_face_size`` is the smaller side of a box, in pixels of the
    image given. ``work_side``: a larger video frame is detected on a copy shrunk to this
    many pixels along its longer side (0: the full resolution; see :func:`work_scale`, and
    the README's "Detection at a working resolution" for which faces that still finds).
    ``max_side``: no image is detected larger than this, which bounds the detector's
    memory and time whatever the photo's size. Boxes and landmarks are mapped back to the
    image given, so alignment uses its full resolution. ``backend``: "opencv" (OpenCV's
    DNN), "tf" (our port: LiteRT on the CPU, TensorFlow on a GPU) or "auto" (see
    :func:`faceapp.recognition.pipeline.build_detector`)."""

    score_threshold: float = 0.8
    nms_threshold: float = 0.3
    top_k: int = 5000
    min_face_size: int = 20
    max_side: int = 1920
    work_side: int = 960
    backend: str = "auto"

    def validate(self) -> None:
        if not 64 <= self.max_side <= 8192:
            raise ValueError(f"max_side must be in [64, 8192], got {self.max_side}")
        if self.work_side and not 64 <= self.work_side <= 8192:
            raise ValueError(f"the detection side must be 0 (full resolution) or in [64, 8192], got {self.work_side}")
        if not 0.0 < self.score_threshold < 1.0:
            raise ValueError(f"score_threshold must be in (0, 1), got {self.score_threshold}")
        if not 0.0 < self.nms_threshold < 1.0:
            raise ValueError(f"nms_threshold must be in (0, 1), got {self.nms_threshold}")
        if self.min_face_size < 0:
            raise ValueError(f"min_face_size must be >= 0, got {self.min_face_size}")
        if self.backend not in DETECTORS:
            raise ValueError(f"the detector must be one of {', '.join(DETECTORS)}, got {self.backend!r}")


def work_scale(height: int, width: int, config: DetectorConfig) -> float:
    """The factor (<= 1) by which a ``height`` x ``width`` video frame is shrunk for
    detection: to ``config.work_side`` pixels on its longer side, and never above
    ``config.max_side``."""
    longest = max(height, width)
    scale = min(1.0, config.work_side / longest) if config.work_side else 1.0
    return min(scale, config.max_side / longest)


class Detector:
    """Finds faces and their 5 landmarks in BGR frames. Subclasses run YuNet on one
    (already shrunk) image in :meth:`raw`; this class shrinks, maps back and filters.
    One instance per thread."""

    name = "detector"

    def __init__(self, config: DetectorConfig | None = None):
        self.config = config or DetectorConfig()
        self.config.validate()

    def raw(self, image: np.ndarray) -> np.ndarray:
        """float32 ``(K, 15)``: ``cv2.FaceDetectorYN.detect``'s rows for a BGR uint8 image."""
        raise NotImplementedError

    def detect(self, image: np.ndarray, video: bool = False) -> list[Detection]:
        """Faces in a BGR uint8 ``(H, W, 3)`` image, highest score first; boxes and
        landmarks in ``image``'s pixels. ``video``: a frame of a live stream, detected at
        the working resolution (``config.work_side``); a still photo is detected at its
        own (up to ``config.max_side``), for the most precise landmarks."""
        size = self.detection_size(image, video)
        small = image
        if size != image.shape[:2]:
            import cv2

            small = cv2.resize(image, size[::-1], interpolation=cv2.INTER_AREA)
        return self.detections_in(self.raw(small), size, image.shape[:2])

    def detection_size(self, image: np.ndarray, video: bool = False) -> tuple[int, int]:
        """``(height, width)`` of the copy of ``image`` (BGR uint8 ``(H, W, 3)``, checked)
        that :meth:`detect` runs the network on (see ``video`` there)."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected a BGR uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
        height, width = image.shape[:2]
        scale = work_scale(height, width, self.config) if video else min(1.0, self.config.max_side / max(height, width))
        return (height, width) if scale >= 1.0 else (max(1, round(height * scale)), max(1, round(width * scale)))

    def detections_in(self, rows: np.ndarray, size: tuple[int, int], full: tuple[int, int]) -> list[Detection]:
        """The raw rows found in a copy of ``size`` ``(height, width)`` as detections in
        the ``full``-sized image's pixels, of at least ``config.min_face_size`` there."""
        if size == tuple(full):
            return self.detections_from(rows, self.config.min_face_size)
        found = [rescale(d, size[1] / full[1], size[0] / full[0]) for d in self.detections_from(rows, 0)]
        return [d for d in found if min(d.box[2], d.box[3]) >= self.config.min_face_size]

    @staticmethod
    def detections_from(rows: np.ndarray, min_face: float) -> list[Detection]:
        """``cv2.FaceDetectorYN``-style float ``(K, 15)`` rows -> detections of at least
        ``min_face`` pixels (the box's smaller side), highest score first."""
        detections = []
        for row in rows:
            x, y, w, h = (float(v) for v in row[:4])
            if min(w, h) < min_face:
                continue
            detections.append(
                Detection(box=(x, y, w, h), landmarks=row[4:14].reshape(5, 2).astype(np.float32), score=float(row[14]))
            )
        detections.sort(key=lambda d: d.score, reverse=True)
        return detections


class YuNetDetector(Detector):
    """YuNet through OpenCV's DNN (``cv2.FaceDetectorYN``, which keeps per-call state: one
    instance per thread); the input size follows each frame."""

    name = "OpenCV DNN"

    def __init__(self, model_path: str | Path, config: DetectorConfig | None = None):
        import cv2

        super().__init__(config)
        try:
            self._detector = cv2.FaceDetectorYN.create(
                str(model_path), "", (320, 320),
                self.config.score_threshold, self.config.nms_threshold, self.config.top_k,
            )
        except cv2.error as error:
            raise ModelError(f"cannot load the YuNet detector from {model_path}: {error.err}") from None
        self._input_size = (320, 320)

    def raw(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        if (width, height) != self._input_size:
            self._detector.setInputSize((width, height))
            self._input_size = (width, height)
        _, faces = self._detector.detect(image)
        return np.zeros((0, 15), np.float32) if faces is None else faces


def rescale(detection: Detection, sx: float, sy: float) -> Detection:
    """A detection found in an image resized by ``(sx, sy)``, in the original image's
    pixels (pixel centres: ``x + 0.5 = (x_resized + 0.5) / sx``)."""
    x, y, w, h = detection.box
    box = ((x + 0.5) / sx - 0.5, (y + 0.5) / sy - 0.5, w / sx, h / sy)
    landmarks = ((detection.landmarks + 0.5) / np.array([sx, sy], np.float32) - 0.5).astype(np.float32)
    return Detection(box=box, landmarks=landmarks, score=detection.score)
