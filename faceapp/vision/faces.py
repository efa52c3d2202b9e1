"""Finding the subject's face in a still image (a dataset photo, an enrollment photo).

How a face is found is a :class:`FacePolicy`: detect on the image at one or more scales
(small images, such as LFW's 150x150 crops, are upscaled for YuNet) and average the
landmark estimates, keep the face closest to the image centre (or the largest), and,
where no face is found, either fall back to fixed landmarks at the average position of
LFW faces (a centre alignment suited to face-centred crops) or give up. Evaluation,
training and the app use the same functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from faceapp.types import Detection
from faceapp.vision.boxes import box_iou
from faceapp.vision.detection import rescale

PICKS = ("centre", "largest")
#: Scales above 1 are applied only while the upscaled image stays this small: small
#: crops (LFW's 150x150) are upscaled for YuNet, large photos never are.
UPSCALE_MAX_SIDE = 1024
NO_FACE_POLICIES = ("centre", "reject", "skip")

#: Where YuNet puts the five landmarks (right eye, left eye, nose, right and left mouth
#: corners; ``(x, y)``) of the subject of LFW's 150x150 deep-funneled centre crops, as
#: fractions of the image width and height: the mean over the 7,701 images of the shared
#: set (detected at 2x). The fallback alignment for an image with no detected face.
LFW_CENTRE_LANDMARKS = np.array(
    [
        [54.47, 62.33],
        [96.53, 61.38],
        [75.96, 87.90],
        [58.60, 108.25],
        [94.08, 107.46],
    ],
    dtype=np.float64,
) / 150.0


@dataclass(frozen=True)
class FacePolicy:
    """How the face of a dataset image is found.

    Attributes:
        scales: the detector runs on the image resized by each of these factors (each
            in [1, 8]); the subject's landmarks, mapped back to the original pixels, are
            averaged over the scales that find it (two estimates of the landmarks are
            less noisy than one), and the face is aligned in the original image. A
            factor above 1 is skipped when the upscaled image would be larger than
            :data:`UPSCALE_MAX_SIDE` (large photos are never upscaled).
        pick: which of several detected faces is the subject: ``"centre"`` (box centre
            nearest the image centre, LFW's convention) or ``"largest"`` (box area).
            It is picked at the first scale that finds a face; at the other scales the
            detection overlapping it most (IoU >= 0.5) is the same face.
        no_face: what an image without a detected face becomes: ``"centre"`` (aligned
            with :data:`LFW_CENTRE_LANDMARKS` scaled to the image: suits face-centred
            crops), ``"reject"`` (LFW: every pair using it is scored -1, i.e. declared
            "different") or ``"skip"`` (identification: the image is left out).
    """

    scales: tuple[float, ...] = (1.0, 2.0)
    pick: str = "centre"
    no_face: str = "centre"

    def validate(self) -> None:
        if not self.scales or not all(math.isfinite(s) and 1.0 <= s <= 8.0 for s in self.scales):
            raise ValueError(f"scales must be one or more factors in [1, 8], got {self.scales}")
        if self.pick not in PICKS:
            raise ValueError(f"pick must be one of {', '.join(PICKS)}, got {self.pick!r}")
        if self.no_face not in NO_FACE_POLICIES:
            raise ValueError(f"no_face must be one of {', '.join(NO_FACE_POLICIES)}, got {self.no_face!r}")

    def describe(self) -> str:
        """One sentence for reports."""
        scales = " and ".join(f"{s:g}x" for s in self.scales)
        subject = "the face nearest the image centre" if self.pick == "centre" else "the largest face"
        found = f"YuNet on the image at {scales}, {subject} is the subject"
        if len(self.scales) > 1:
            found += ", its landmarks averaged over the scales that find it"
        fallback = {
            "centre": "images without a detected face are aligned with fixed landmarks "
            "(the mean LFW landmark positions scaled to the image: a centre alignment)",
            "reject": "pairs with an image without a detected face are scored -1 (declared different)",
            "skip": "images without a detected face are left out",
        }[self.no_face]
        return f"{found}; {fallback}"

    def to_json(self) -> dict[str, Any]:
        return {"scales": list(self.scales), "pick": self.pick, "no_face": self.no_face, "description": self.describe()}


@dataclass(frozen=True)
class FoundFace:
    """The subject's face in one image.

    Attributes:
        landmarks: float32 ``(5, 2)`` ``(x, y)`` in the original image's pixels, or
            None when no face was detected and the policy does not fall back.
        detected: whether the detector found it (False: fallback or nothing).
        face_count: how many faces the detector found (at the scale that picked the subject).
        score: the detector score of the chosen face (0.0 when not detected).
    """

    landmarks: np.ndarray | None
    detected: bool
    face_count: int
    score: float


def centre_landmarks(width: int, height: int) -> np.ndarray:
    """:data:`LFW_CENTRE_LANDMARKS` in the pixels of a ``width`` x ``height`` image:
    float32 ``(5, 2)``."""
    return (LFW_CENTRE_LANDMARKS * np.array([width, height], np.float64)).astype(np.float32)


def pick_detection(detections: Sequence[Detection], width: int, height: int, pick: str = "centre") -> Detection:
    """The subject among ``detections`` (non-empty) of a ``width`` x ``height`` image:
    the box whose centre is nearest the image centre, or the largest box."""
    if not detections:
        raise ValueError("no detections to pick from")
    if pick == "largest":
        return max(detections, key=lambda d: d.area)
    if pick != "centre":
        raise ValueError(f"pick must be one of {', '.join(PICKS)}, got {pick!r}")
    cx, cy = width / 2.0, height / 2.0
    return min(detections, key=lambda d: math.hypot(d.box[0] + d.box[2] / 2 - cx, d.box[1] + d.box[3] / 2 - cy))


def detect_at_scale(detect: Callable[[np.ndarray], list[Detection]], image: np.ndarray, scale: float) -> list[Detection]:
    """``detect`` run on ``image`` resized by ``scale``, boxes and landmarks mapped back
    to ``image``'s pixels (pixel centres: ``x + 0.5 = (x_resized + 0.5) / scale``)."""
    import cv2

    if scale == 1.0:
        return detect(image)
    height, width = image.shape[:2]
    resized = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_LINEAR)
    sx, sy = resized.shape[1] / width, resized.shape[0] / height
    return [rescale(d, sx, sy) for d in detect(resized)]


def find_face(detect: Callable[[np.ndarray], list[Detection]], image: np.ndarray, policy: FacePolicy) -> FoundFace:
    """Find the subject's landmarks in a BGR uint8 ``(H, W, 3)`` image under ``policy``.

    ``detect`` is e.g. ``Recognizer.detect``. The detector's minimum face size applies
    to the resized image.
    """
    height, width = image.shape[:2]
    subject, count, estimates = None, 0, []
    for scale in policy.scales:
        if scale > 1.0 and max(height, width) * scale > UPSCALE_MAX_SIDE:
            continue  # a large photo: its faces are not small, and upscaling it costs memory
        detections = detect_at_scale(detect, image, scale)
        if not detections:
            continue
        if subject is None:
            subject, count = pick_detection(detections, width, height, policy.pick), len(detections)
            estimates.append(subject.landmarks)
            continue
        same = max(detections, key=lambda d: box_iou(d.box, subject.box))
        if box_iou(same.box, subject.box) >= 0.5:
            estimates.append(same.landmarks)
    if subject is not None:
        return FoundFace(np.mean(estimates, axis=0).astype(np.float32), True, count, subject.score)
    if policy.no_face == "centre":
        return FoundFace(centre_landmarks(width, height), False, 0, 0.0)
    return FoundFace(None, False, 0, 0.0)
