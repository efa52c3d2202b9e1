"""How usable a detected face is: as an enrollment sample, and as a view to judge.

Two different questions, two answers:

* **Enrollment** (:func:`assess`): the checks a user can act on -- size ("move
  closer"), sharpness ("hold still"), light ("too dark" / "too bright") and pose ("turn
  to the camera", judged from the landmarks) -- and a score in [0, 1] from them
  (:func:`quality_scores`) that ranks a person's templates.
* **A view in the live loop** (:func:`view_quality`): how far the recognition of this
  view can be trusted. ``faceapp eval robustness`` measured the candidates (its
  "quality" section: error versus discard over 33,000 clean and degraded LFW pairs): the
  detector's own confidence predicts the wrong decisions best; the enrollment score,
  the same with exposure and a noise-robust sharpness, and the previous confidence x
  size all do worse (size hardly matters to the embedding: 24-pixel faces lose little).
  So a view's quality is its detector confidence on a ramp (:data:`QUALITY_RAMP`); the
  live loop weighs each recognition's vote by it and lets no view below
  :data:`JUDGE_MIN_CONFIDENCE` name anybody.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceapp.types import Detection

#: Detector confidences mapped to a view quality of 0 and of 1 (linear between).
QUALITY_RAMP = (0.80, 0.95)
#: A view whose detector confidence is below this names nobody in the live loop (it
#: still counts as seen; the track waits for a better view). Chosen on the pooled LFW pairs
#: of ``faceapp eval robustness --pairs 1500 --seed 1`` (14% of the views left unjudged,
#: the false non-match rate at the clean decisions 12.8% -> 8.6%); on the held-out run
#: (``--seed 0``) 14.3% unjudged, 0.3% of the clean ones, 12.90% -> 8.60% (README,
#: "Degraded images and head pose").
JUDGE_MIN_CONFIDENCE = 0.88


@dataclass(frozen=True)
class QualityConfig:
    min_face_size: float = 80.0  # pixels, smaller side of the box
    min_sharpness: float = 40.0  # variance of the Laplacian on the aligned face
    min_brightness: float = 50.0  # mean grey level of the aligned face, 0..255
    max_brightness: float = 215.0
    max_yaw: float = 0.35  # nose offset from the eyes' midline, as a fraction of eye distance
    max_roll_degrees: float = 20.0


@dataclass(frozen=True)
class QualityReport:
    """Measurements of one face and the problems found (empty tuple: accepted).

    ``score`` in [0, 1] summarises them for ranking views (higher is better): see
    :func:`quality_scores`.
    """

    face_size: float
    sharpness: float
    brightness: float
    yaw: float
    roll_degrees: float
    problems: tuple[str, ...]
    score: float

    @property
    def ok(self) -> bool:
        return not self.problems


def quality_scores(face_size, sharpness, yaw, detector_score, config: QualityConfig | None = None) -> np.ndarray:
    """The enrollment score in [0, 1] from measurements (scalars or equal-shape arrays):
    ``size`` (reaching 1 at twice the enrollment minimum) x ``sharpness`` (1 at four
    times the minimum) x ``frontal`` (falling linearly to 0 at twice the enrollment yaw
    limit) x the detector's confidence. Returns float64 of the inputs' shape."""
    config = config or QualityConfig()
    size = np.clip(np.asarray(face_size, np.float64) / (2 * config.min_face_size), 0.0, 1.0)
    sharp = np.clip(np.asarray(sharpness, np.float64) / (4 * config.min_sharpness), 0.0, 1.0)
    frontal = np.clip(1.0 - np.abs(np.asarray(yaw, np.float64)) / (2 * config.max_yaw), 0.0, 1.0)
    return np.clip(size * sharp * frontal * np.asarray(detector_score, np.float64), 0.0, 1.0)


def exposure_factor(brightness, config: QualityConfig | None = None) -> np.ndarray:
    """1 inside the enrollment brightness limits, falling linearly to 0 at black or white."""
    config = config or QualityConfig()
    light = np.asarray(brightness, np.float64)
    return np.clip(np.minimum(light / config.min_brightness, (255.0 - light) / (255.0 - config.max_brightness)), 0.0, 1.0)


def confidence_quality(detector_score) -> np.ndarray:
    """Detector confidences (scalar or array) on :data:`QUALITY_RAMP`: float64 in [0, 1]."""
    low, high = QUALITY_RAMP
    return np.clip((np.asarray(detector_score, np.float64) - low) / (high - low), 0.0, 1.0)


def measure(aligned: np.ndarray, detection: Detection) -> tuple[float, float, float, float, float]:
    """``(face_size, sharpness, brightness, yaw, roll_degrees)`` of one face.

    ``aligned``: its BGR uint8 ``(112, 112, 3)`` crop; ``detection``: where it was found
    (box and landmarks in the frame's pixels). Sharpness is the variance of the
    Laplacian and brightness the mean grey level of the crop's central 80 x 80 pixels
    (away from the black borders alignment may add); yaw is the nose's offset from the
    eyes' midpoint along the eye line, in eye distances (signed).
    """
    import cv2

    grey = cv2.cvtColor(aligned, cv2.COLOR_BGR2GRAY)
    centre = grey[16:96, 16:96]
    sharpness = float(cv2.Laplacian(centre, cv2.CV_64F).var())
    brightness = float(centre.mean())
    face_size = float(min(detection.box[2], detection.box[3]))
    right_eye, left_eye, nose = detection.landmarks[0], detection.landmarks[1], detection.landmarks[2]
    eye_vector = left_eye - right_eye
    eye_distance = float(np.hypot(*eye_vector)) or 1.0
    midpoint = (right_eye + left_eye) / 2.0
    yaw = float(np.dot(nose - midpoint, eye_vector) / eye_distance**2)
    roll = float(np.degrees(np.arctan2(eye_vector[1], eye_vector[0])))
    return face_size, sharpness, brightness, yaw, roll


def assess(aligned: np.ndarray, detection: Detection, config: QualityConfig | None = None) -> QualityReport:
    """Judge one face. ``aligned``: its BGR uint8 ``(112, 112, 3)`` crop."""
    config = config or QualityConfig()
    face_size, sharpness, brightness, yaw, roll = measure(aligned, detection)
    problems = []
    if face_size < config.min_face_size:
        problems.append("move closer")
    if brightness < config.min_brightness:
        problems.append("too dark")
    elif brightness > config.max_brightness:
        problems.append("too bright")
    if sharpness < config.min_sharpness:
        problems.append("hold still (image is blurred)")
    if abs(yaw) > config.max_yaw or abs(roll) > config.max_roll_degrees:
        problems.append("turn to the camera")
    score = float(quality_scores(face_size, sharpness, yaw, detection.score, config))
    return QualityReport(face_size, sharpness, brightness, yaw, roll, tuple(problems), score)


def view_quality(detection: Detection) -> float:
    """How far the recognition of one view can be trusted, in [0, 1]: its detector
    confidence on :data:`QUALITY_RAMP` (see the module's note for the measurement)."""
    return float(confidence_quality(detection.score))


def judged(detection: Detection) -> bool:
    """Whether a view is good enough to name anybody (:data:`JUDGE_MIN_CONFIDENCE`)."""
    return detection.score >= JUDGE_MIN_CONFIDENCE
