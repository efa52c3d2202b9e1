"""Turning photos (or camera frames) of one person into gallery templates.

Enrollment takes exactly one face per image: an image with no face, or with several,
is refused with a message naming it, and nothing is written (the caller adds all
templates in one gallery transaction).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from faceapp.errors import NoFaceError
from faceapp.media.imageio import encode_jpeg, read_image
from faceapp.recognition.pipeline import Recognizer
from faceapp.storage.gallery import NewTemplate
from faceapp.types import AlignedFace
from faceapp.vision.quality import QualityReport, assess

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sample:
    """One accepted face: its aligned crop, embedding and quality."""

    face: AlignedFace = field(repr=False)
    embedding: np.ndarray = field(repr=False)
    quality: QualityReport
    source: str

    def template(self, model_id: str) -> NewTemplate:
        """The gallery template of this sample (the gallery drops the thumbnail in
        embeddings-only mode)."""
        return NewTemplate(
            embedding=self.embedding,
            model_id=model_id,
            quality=self.quality.score,
            thumbnail=encode_jpeg(self.face.image),
            source=self.source,
        )


def single_face(recognizer: Recognizer, image: np.ndarray, label: str) -> AlignedFace:
    """The one face of ``image`` (BGR), aligned; NoFaceError if there are none or several."""
    detections = recognizer.detect(image)
    if not detections:
        raise NoFaceError(f"{label}: no face found")
    if len(detections) > 1:
        raise NoFaceError(f"{label}: {len(detections)} faces found; enrollment needs photos of one person alone")
    return recognizer.align(image, detections)[0]


def samples_from_images(recognizer: Recognizer, images: Iterable[tuple[str, np.ndarray]]) -> list[Sample]:
    """One :class:`Sample` per ``(label, BGR image)``; all faces embedded in one batch."""
    faces, labels = [], []
    for label, image in images:
        faces.append(single_face(recognizer, image, label))
        labels.append(label)
    embeddings = recognizer.embed(faces)
    samples = []
    for face, embedding, label in zip(faces, embeddings, labels):
        report = assess(face.image, face.detection)
        if not report.ok:
            logger.warning("%s: low-quality face (%s)", label, ", ".join(report.problems))
        samples.append(Sample(face, embedding, report, label))
    return samples


def samples_from_files(recognizer: Recognizer, paths: Iterable[str | os.PathLike], progress: bool = False) -> list[Sample]:
    """Read and embed each photo; any unreadable file or face problem stops everything."""
    paths = list(paths)
    if progress and len(paths) > 3:
        from tqdm import tqdm

        # Closed (and erased) even when a photo is refused, so the bar never follows
        # the error message.
        with tqdm(paths, desc="reading photos", unit="photo", leave=False) as bar:
            return samples_from_images(recognizer, ((str(p), read_image(p)) for p in bar))
    return samples_from_images(recognizer, ((str(p), read_image(p)) for p in paths))
