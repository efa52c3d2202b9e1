"""Judging live frames as enrollment samples, and spotting an already-enrolled face.

Pure functions over core values (no Qt): the recognition worker calls
:func:`evaluate_frame` on its own thread while the enroll dialog is open, and the
dialog calls :func:`likely_person` before saving.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from faceapp.recognition.enrollment import Sample
from faceapp.recognition.matching import Matcher
from faceapp.types import AlignedFace, FrameResult
from faceapp.vision.alignment import align_face
from faceapp.vision.quality import QualityConfig, assess

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


def evaluate_frame(image: np.ndarray, result: FrameResult, config: QualityConfig | None = None, source: str = "camera") -> Candidate:
    """Turn the one face of a processed BGR frame into a :class:`Sample`, if it is good
    enough (big, sharp, frontal, well lit); otherwise say what is wrong.

    ``result`` must come from ``Recognizer.process(image)``: its embedding is reused, so
    no model runs here (alignment is a cheap affine warp).
    """
    if not result.faces:
        return Candidate(None, NO_FACE)
    if len(result.faces) > 1:
        return Candidate(None, SEVERAL_FACES)
    face = result.faces[0]
    aligned = AlignedFace(align_face(image, face.detection.landmarks), face.detection)
    report = assess(aligned.image, face.detection, config)
    if report.problems:
        return Candidate(None, "; ".join(report.problems))
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
