"""Turning photos (or camera frames) of one person into gallery templates.

Enrollment takes exactly one face per image: an image with no face, or with several,
is refused with a message naming it, and nothing is written (the caller adds all
templates in one gallery transaction). Live frames are judged as samples by
:func:`evaluate_frame` (quality gate, one face only); :func:`likely_person` tells
whether the samples' face is already enrolled as somebody (the CLI refuses then unless
``--force``; the GUI asks).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from faceapp.errors import NoFaceError
from faceapp.files import display_name
from faceapp.media.imageio import encode_jpeg, read_image
from faceapp.recognition.matching import Matcher
from faceapp.recognition.pipeline import Recognizer
from faceapp.storage.gallery import NewTemplate
from faceapp.types import AlignedFace, FrameResult
from faceapp.vision.quality import QualityConfig, QualityReport, assess

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
            thumbnail=encode_jpeg(self.face.picture),
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
            return samples_from_images(recognizer, ((display_name(p), read_image(p)) for p in bar))
    return samples_from_images(recognizer, ((display_name(p), read_image(p)) for p in paths))


NO_FACE = "no face in view"
SEVERAL_FACES = "one person at a time, please"


@dataclass(frozen=True)
class Candidate:
    """What one frame offers the enroll dialog: a usable ``sample``, or the ``problem``
    to tell the user (one line, e.g. "move closer")."""

    sample: Sample | None
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.sample is not None


#: Why a webcam sample is refused by the passive liveness check.
NOT_LIVE = "this looks like a photo or a screen, not a live face"


def evaluate_frame(result: FrameResult, config: QualityConfig | None = None, source: str = "camera", *,
                   image: np.ndarray | None = None, liveness=None) -> Candidate:
    """Turn the one face of a processed frame into a :class:`Sample`, if it is good
    enough (big, sharp, frontal, well lit) and, given a ``liveness`` checker
    (:class:`~faceapp.vision.liveness.LivenessChecker`) and the BGR ``image`` the frame
    was, live (not a photo or a screen held up to the camera); otherwise say what is wrong.

    ``result`` must come from ``Recognizer.process(image)`` without tracking: its
    aligned crop and embedding are reused, so nothing is computed again here.
    """
    if not result.faces:
        return Candidate(None, NO_FACE)
    if len(result.faces) > 1:
        return Candidate(None, SEVERAL_FACES)
    face = result.faces[0]
    if face.aligned is None:
        raise ValueError("evaluate_frame needs a result processed without tracking (every face aligned)")
    aligned = face.aligned
    report = assess(aligned.image, face.detection, config)
    if report.problems:
        return Candidate(None, "; ".join(report.problems))
    if liveness is not None and image is not None:
        verdict = liveness.check(image, face.detection)
        if not verdict.is_live:
            return Candidate(None, f"{NOT_LIVE} (liveness {verdict.score:.2f})")
    return Candidate(Sample(aligned, face.embedding, report, source), None)


def likely_person(matcher: Matcher, embeddings: np.ndarray) -> str | None:
    """The enrolled person most of ``embeddings`` (float32 ``(N, D)``) match, or None.

    "Most" is a strict majority, so one stray match among five samples is not enough.
    """
    if not len(embeddings) or not matcher.person_count:
        return None
    names = [m.name for m in matcher.match(np.asarray(embeddings, np.float32), unique=False) if m.name]
    if not names:
        return None
    name, count = Counter(names).most_common(1)[0]
    return name if count * 2 > len(embeddings) else None


def stack_embeddings(samples: Sequence[Sample]) -> np.ndarray:
    """float32 ``(N, D)`` of the samples' embeddings."""
    return np.stack([s.embedding for s in samples]).astype(np.float32)
