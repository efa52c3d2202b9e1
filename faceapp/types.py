"""Typed values handed between the pipeline's stages.

Conventions used everywhere in FaceApp's core:

* Images are numpy ``uint8`` arrays of shape ``(H, W, 3)`` in **BGR** order (OpenCV's).
* Boxes are ``(x, y, w, h)`` in pixels of the frame they were found in, floats.
* Landmarks are a float32 ``(5, 2)`` array of ``(x, y)`` points in this order: right eye,
  left eye, nose tip, right mouth corner, left mouth corner (the *person's* right, i.e.
  the image's left side for a frontal face) -- YuNet's order and ArcFace's.
* Embeddings are float32 ``(D,)`` unit vectors (D = 128 for SFace); similarity is their
  dot product (cosine similarity), in ``[-1, 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np


@dataclass(frozen=True)
class Detection:
    """One face found by the detector."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray = field(repr=False)
    score: float

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]


@dataclass(frozen=True)
class AlignedFace:
    """A face warped to the 112x112 ArcFace template (BGR uint8 ``(112, 112, 3)``), and,
    when the embedding model needs one (the fused SFace + dlib model), ``chip``: the same
    face cut as dlib's 150x150 chip (BGR uint8 ``(150, 150, 3)``, :mod:`faceapp.vision.dlib_align`),
    and ``wide``: the wider crop the gallery stores (BGR uint8 ``(224, 224, 3)``,
    :mod:`faceapp.vision.face_crop`), from which both can be cut again."""

    image: np.ndarray = field(repr=False)
    detection: Detection
    chip: np.ndarray | None = field(default=None, repr=False)
    wide: np.ndarray | None = field(default=None, repr=False)

    @property
    def picture(self) -> np.ndarray:
        """What to store of this face: the wide crop when it was cut, else the 112x112 crop."""
        return self.wide if self.wide is not None else self.image


@dataclass(frozen=True)
class Match:
    """The open-set decision for one embedding against the gallery.

    ``name`` is None for "unknown". ``best_name``/``similarity`` always describe the best
    person even when below the threshold; ``margin`` is the gap to the second-best
    person (``similarity`` itself when the gallery holds one person; 0.0 when empty).
    """

    name: str | None
    similarity: float
    best_name: str | None
    margin: float
    threshold: float


@dataclass(frozen=True)
class FaceResult:
    """Everything known about one face in one frame.

    ``embedding``: float32 ``(D,)``; with tracking, the track's latest one (zeros before
    the first). ``aligned``: the face's crop when it was aligned and embedded in this
    very frame (always without tracking), else None.
    """

    detection: Detection
    embedding: np.ndarray = field(repr=False)
    match: Match
    track_id: int | None = None  # set when the face is tracked across frames
    aligned: AlignedFace | None = field(default=None, repr=False, compare=False)
    visitor: int | None = None  # an unknown face's remembered visitor ("Unknown #N"), see recognition.memory
    liveness: float | None = None  # P(live) of the passive anti-spoofing check, when it ran (see vision.liveness)
    #: False while tracking has seen this face only in views too poor to judge (see
    #: vision.quality.judged): "unknown" then means "not judged yet", not a stranger.
    judged: bool = True

    def to_json(self) -> dict:
        x, y, w, h = self.detection.box
        return {
            "track_id": self.track_id,
            "box": [round(x, 1), round(y, 1), round(w, 1), round(h, 1)],
            "name": self.match.name,
            "visitor": self.visitor,
            "similarity": round(self.match.similarity, 4),
            "best_name": self.match.best_name,
            "margin": round(self.match.margin, 4),
            "detection_score": round(self.detection.score, 4),
            **({} if self.liveness is None else {"liveness": round(self.liveness, 4)}),
        }


@dataclass(frozen=True)
class StageTimes:
    """Milliseconds spent in each stage for one frame."""

    detect: float = 0.0
    align: float = 0.0
    embed: float = 0.0
    match: float = 0.0


@dataclass(frozen=True)
class FrameResult:
    """The faces of one frame, in detection order, and how long each stage took."""

    faces: tuple[FaceResult, ...]
    times: StageTimes
    frame_size: tuple[int, int]  # (width, height)

    def with_liveness(self, scores) -> FrameResult:
        """This result with each face's passive liveness score (``scores``: one float, or
        an object with a ``score``, per face, in order)."""
        faces = tuple(replace(face, liveness=float(getattr(score, "score", score)))
                      for face, score in zip(self.faces, scores, strict=True))
        return replace(self, faces=faces)
