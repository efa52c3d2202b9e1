"""The two pipelines ``faceapp eval robustness`` runs on the same in-memory images.

* :class:`FaceAppPipeline`: the app's own (its detector under a :class:`FacePolicy`, the
  5-point alignment, its embedding network): what ``faceapp eval lfw`` measures, for
  images that exist only in memory (degraded copies), and keeping where each face was.
* :class:`OpenCVReference`: OpenCV's own YuNet + SFace pipeline as an OpenCV user runs
  it: ``cv2.FaceDetectorYN`` on the image at its own size (no upscaling, no minimum
  face size), ``cv2.FaceRecognizerSF.alignCrop`` and ``feature`` with OpenCV Zoo's
  original SFace ONNX file; the subject and the no-face rule are the run's policy's.

Both take a list of BGR uint8 ``(H, W, 3)`` images and return a :class:`FaceBatch`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from faceapp.types import Detection
from faceapp.vision.detection import rescale
from faceapp.vision.faces import FacePolicy, FoundFace, find_face, pick_detection

logger = logging.getLogger(__name__)

__all__ = ["MEASURES", "FaceAppPipeline", "FaceBatch", "OpenCVReference", "find_subject"]

REFERENCE_NAME = "opencv"


@dataclasses.dataclass(frozen=True)
class FaceBatch:
    """What a pipeline made of ``n`` images.

    Attributes:
        embeddings: float32 ``(n, D)`` unit rows; zeros where ``usable`` is False.
        detected: bool ``(n,)``: the detector found the face.
        usable: bool ``(n,)``: the row is an embedding (detected, or aligned by the
            policy's centre fallback).
        landmarks: float32 ``(n, 5, 2)`` ``(x, y)`` pixels the face was aligned with (the
            fallback's where not detected); NaN where not usable.
        boxes: float32 ``(n, 4)`` the subject's detector box ``(x, y, w, h)``; NaN where
            not detected.
        measures: float32 ``(n, 6)``, the view's quality measurements
            (:data:`MEASURES`: :func:`faceapp.vision.quality.measure` on the aligned crop,
            the sharpness once more after a 3x3 Gaussian, the detector's score); NaN
            where not detected, or where the pipeline does not measure (the reference).
    """

    embeddings: np.ndarray
    detected: np.ndarray
    usable: np.ndarray
    landmarks: np.ndarray
    boxes: np.ndarray
    measures: np.ndarray


#: The columns of :attr:`FaceBatch.measures`.
MEASURES = ("face_size", "sharpness", "brightness", "yaw", "sharpness_smoothed", "detector_score")


def find_subject(detect: Callable[[np.ndarray], list[Detection]], image: np.ndarray,
                 policy: FacePolicy) -> tuple[FoundFace, tuple[float, float, float, float] | None]:
    """:func:`~faceapp.vision.faces.find_face`, plus the subject's box in ``image``'s
    pixels (None when not detected): the box of the detection it picked, at the first
    scale that found a face (where the policy picks the subject)."""
    calls: list[tuple[tuple[int, ...], list[Detection]]] = []

    def recording(resized: np.ndarray) -> list[Detection]:
        found = detect(resized)
        calls.append((resized.shape, found))
        return found

    found = find_face(recording, image, policy)
    if not found.detected:
        return found, None
    shape, detections = next((shape, found) for shape, found in calls if found)
    height, width = image.shape[:2]
    mapped = [rescale(d, shape[1] / width, shape[0] / height) for d in detections]
    return found, pick_detection(mapped, width, height, policy.pick).box


def _empty(count: int, dim: int) -> FaceBatch:
    return FaceBatch(
        np.zeros((count, dim), np.float32), np.zeros(count, bool), np.zeros(count, bool),
        np.full((count, 5, 2), np.nan, np.float32), np.full((count, 4), np.nan, np.float32),
        np.full((count, len(MEASURES)), np.nan, np.float32),
    )


def _locate(detect: Callable[[np.ndarray], list[Detection]], images: Sequence[np.ndarray], policy: FacePolicy,
            batch: FaceBatch) -> list[int]:
    """Find every image's subject into ``batch``; the rows that have landmarks."""
    rows = []
    for row, image in enumerate(images):
        found, box = find_subject(detect, image, policy)
        batch.detected[row] = found.detected
        if box is not None:
            batch.boxes[row] = box
            batch.measures[row, MEASURES.index("detector_score")] = found.score
        if found.landmarks is not None:
            batch.landmarks[row] = found.landmarks
            rows.append(row)
    return rows


class FaceAppPipeline:
    """The app's pipeline: ``recognizer``'s detector under ``policy``, alignment, and its
    embedder (flip-fused when the recognizer is: ``--flip-fusion``)."""

    name = "faceapp"

    def __init__(self, recognizer: Any, policy: FacePolicy):
        policy.validate()
        self.recognizer, self.policy = recognizer, policy
        self.dim = int(recognizer.embedder.dim)

    def embed(self, images: Sequence[np.ndarray]) -> FaceBatch:
        from faceapp.embedding.flip import embed_faces
        from faceapp.vision.alignment import align_face
        from faceapp.vision.dlib_align import dlib_chip

        batch = _empty(len(images), self.dim)
        rows = _locate(self.recognizer.detect, images, self.policy, batch)
        if rows:
            faces = np.stack([align_face(images[row], batch.landmarks[row]) for row in rows])
            embedder = self.recognizer.embedder
            chips = (np.stack([dlib_chip(images[row], batch.landmarks[row]) for row in rows])
                     if self.recognizer.needs_chip else None)
            flip = bool(getattr(self.recognizer, "flip", False))
            batch.embeddings[rows] = embed_faces(embedder, faces, chips, flip)
            batch.usable[rows] = True
            for row, face in zip(rows, faces):
                if batch.detected[row]:
                    batch.measures[row, :5] = _view_measures(face, batch.boxes[row], batch.landmarks[row])
        return batch


def _view_measures(face: np.ndarray, box: np.ndarray, landmarks: np.ndarray) -> tuple[float, ...]:
    """The first five :data:`MEASURES` of one aligned BGR ``(112, 112, 3)`` crop."""
    import cv2

    from faceapp.vision.quality import measure

    size, sharpness, brightness, yaw, _ = measure(face, Detection(box, landmarks, 1.0))
    smoothed = cv2.GaussianBlur(cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)[16:96, 16:96], (3, 3), 0)
    return size, sharpness, brightness, yaw, float(cv2.Laplacian(smoothed, cv2.CV_64F).var())


class OpenCVReference:
    """OpenCV's YuNet + SFace: ``cv2.FaceDetectorYN`` (``yunet_onnx``, the same score
    threshold as the app's) at the image's own size, then ``cv2.FaceRecognizerSF``
    (``sface_onnx``) ``alignCrop`` + ``feature``, one face at a time, cosine similarity.
    ``policy``: its ``pick`` and ``no_face`` are used; detection is at 1x only."""

    name = REFERENCE_NAME

    def __init__(self, yunet_onnx: Path, sface_onnx: Path, policy: FacePolicy, score_threshold: float = 0.8):
        import cv2

        from faceapp.errors import ModelError
        from faceapp.vision.detection import DetectorConfig, YuNetDetector

        self.policy = dataclasses.replace(policy, scales=(1.0,))
        self.policy.validate()
        config = DetectorConfig(score_threshold=score_threshold, min_face_size=0, backend="opencv")
        self.detector = YuNetDetector(yunet_onnx, config)
        try:
            self.recognizer = cv2.FaceRecognizerSF.create(str(sface_onnx), "")
        except cv2.error as error:
            raise ModelError(f"cannot load the reference SFace model {sface_onnx}: {error.err}") from None
        self.sface_onnx = Path(sface_onnx)
        self.dim = 128

    def embed(self, images: Sequence[np.ndarray]) -> FaceBatch:
        batch = _empty(len(images), self.dim)
        for row in _locate(self.detector.detect, images, self.policy, batch):
            face_row = np.zeros(15, np.float32)
            face_row[4:14] = batch.landmarks[row].reshape(-1)  # alignCrop reads only the landmarks
            crop = self.recognizer.alignCrop(images[row], face_row)
            feature = np.asarray(self.recognizer.feature(crop), np.float32).reshape(-1)
            batch.embeddings[row] = feature / max(float(np.linalg.norm(feature)), 1e-12)
            batch.usable[row] = True
        return batch
