"""How usable a detected face is as an enrollment sample.

The checks a user can act on: size ("move closer"), sharpness ("hold still"), light
("too dark" / "too bright") and pose ("turn to the camera", judged from the landmarks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceapp.types import Detection


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

    ``score`` in [0, 1] summarises them for ranking templates (higher is better).
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


def assess(aligned: np.ndarray, detection: Detection, config: QualityConfig | None = None) -> QualityReport:
    """Judge one face. ``aligned``: its BGR uint8 ``(112, 112, 3)`` crop."""
    import cv2

    config = config or QualityConfig()
    grey = cv2.cvtColor(aligned, cv2.COLOR_BGR2GRAY)
    # The central region avoids the black borders that alignment may add.
    centre = grey[16:96, 16:96]
    sharpness = float(cv2.Laplacian(centre, cv2.CV_64F).var())
    brightness = float(centre.mean())
    face_size = float(min(detection.box[2], detection.box[3]))
    right_eye, left_eye, nose = detection.landmarks[0], detection.landmarks[1], detection.landmarks[2]
    eye_vector = left_eye - right_eye
    eye_distance = float(np.hypot(*eye_vector)) or 1.0
    midpoint = (right_eye + left_eye) / 2.0
    # Signed offset of the nose from the eyes' midpoint along the eye line.
    yaw = float(np.dot(nose - midpoint, eye_vector) / eye_distance**2)
    roll = float(np.degrees(np.arctan2(eye_vector[1], eye_vector[0])))
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
    score = (
        min(face_size / (2 * config.min_face_size), 1.0)
        * min(sharpness / (4 * config.min_sharpness), 1.0)
        * max(0.0, 1.0 - abs(yaw) / (2 * config.max_yaw))
        * detection.score
    )
    return QualityReport(face_size, sharpness, brightness, yaw, roll, tuple(problems), float(np.clip(score, 0.0, 1.0)))
