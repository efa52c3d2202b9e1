"""Face detection with YuNet (OpenCV Zoo) through ``cv2.FaceDetectorYN``."""

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


@dataclass(frozen=True)
class DetectorConfig:
    """YuNet options. ``min_face_size`` is the smaller side of a box, in pixels of the
    image given. ``max_side``: a larger image is detected on a copy shrunk to this many
    pixels along its longer side (boxes and landmarks mapped back), which bounds the
    detector's memory and time whatever the photo's size."""

    score_threshold: float = 0.8
    nms_threshold: float = 0.3
    top_k: int = 5000
    min_face_size: int = 20
    max_side: int = 1920

    def validate(self) -> None:
        if not 64 <= self.max_side <= 8192:
            raise ValueError(f"max_side must be in [64, 8192], got {self.max_side}")
        if not 0.0 < self.score_threshold < 1.0:
            raise ValueError(f"score_threshold must be in (0, 1), got {self.score_threshold}")
        if not 0.0 < self.nms_threshold < 1.0:
            raise ValueError(f"nms_threshold must be in (0, 1), got {self.nms_threshold}")
        if self.min_face_size < 0:
            raise ValueError(f"min_face_size must be >= 0, got {self.min_face_size}")


class YuNetDetector:
    """Finds faces and their 5 landmarks. One instance per thread (OpenCV's detector
    keeps per-call state); the input size follows each frame."""

    def __init__(self, model_path: str | Path, config: DetectorConfig | None = None):
        import cv2

        self.config = config or DetectorConfig()
        self.config.validate()
        try:
            self._detector = cv2.FaceDetectorYN.create(
                str(model_path), "", (320, 320),
                self.config.score_threshold, self.config.nms_threshold, self.config.top_k,
            )
        except cv2.error as error:
            raise ModelError(f"cannot load the YuNet detector from {model_path}: {error.err}") from None
        self._input_size = (320, 320)

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in a BGR uint8 ``(H, W, 3)`` image, highest score first; boxes and
        landmarks in ``image``'s pixels."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected a BGR uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
        height, width = image.shape[:2]
        if max(height, width) > self.config.max_side:
            import cv2

            scale = self.config.max_side / max(height, width)
            small = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
            found = [rescale(d, small.shape[1] / width, small.shape[0] / height) for d in self._detect(small, min_face=0)]
            return [d for d in found if min(d.box[2], d.box[3]) >= self.config.min_face_size]
        return self._detect(image, self.config.min_face_size)

    def _detect(self, image: np.ndarray, min_face: float) -> list[Detection]:
        height, width = image.shape[:2]
        if (width, height) != self._input_size:
            self._detector.setInputSize((width, height))
            self._input_size = (width, height)
        _, faces = self._detector.detect(image)
        if faces is None:
            return []
        detections = []
        for row in faces:
            x, y, w, h = (float(v) for v in row[:4])
            if min(w, h) < min_face:
                continue
            detections.append(
                Detection(box=(x, y, w, h), landmarks=row[4:14].reshape(5, 2).astype(np.float32), score=float(row[14]))
            )
        detections.sort(key=lambda d: d.score, reverse=True)
        return detections


def rescale(detection: Detection, sx: float, sy: float) -> Detection:
    """A detection found in an image resized by ``(sx, sy)``, in the original image's
    pixels (pixel centres: ``x + 0.5 = (x_resized + 0.5) / sx``)."""
    x, y, w, h = detection.box
    box = ((x + 0.5) / sx - 0.5, (y + 0.5) / sy - 0.5, w / sx, h / sy)
    landmarks = ((detection.landmarks + 0.5) / np.array([sx, sy], np.float32) - 0.5).astype(np.float32)
    return Detection(box=box, landmarks=landmarks, score=detection.score)
