"""Head pose from the detector's five landmarks: yaw (turning left or right), in degrees.

The estimate is geometric, with no model to load, so it costs microseconds: evaluation
bins LFW's pairs by it, and an active liveness challenge ("turn your head left") can ask
for it on every frame.

How: under a weak-perspective camera, a head turned by ``yaw`` about its vertical axis
moves the nose tip, which stands :data:`NOSE_DEPTH_RATIO` eye distances in front of the
plane of the eyes and mouth corners, sideways by ``depth * sin(yaw)``, while the
distance between the eyes shrinks to ``eye_distance * cos(yaw)``. So the nose's offset
from the face's midline, measured along the eye line in units of the seen eye
distance, is ``NOSE_DEPTH_RATIO * tan(yaw)``, and ``yaw = atan(offset / NOSE_DEPTH_RATIO)``.
The midline is the mean of the eyes' and the mouth corners' midpoints; measuring along
the eye line makes the estimate independent of roll (a tilted head) and, to first
order, of pitch (nodding moves the nose along the midline, not across it).

Limits (read them before using the number as more than a coarse angle):

* :data:`NOSE_DEPTH_RATIO` is a generic adult head's (about 28 mm of nose-tip depth in
  front of the eyes for 63 mm between the pupils), not the person's: a flatter or
  more prominent nose scales the magnitude by roughly +-20%. The sign is reliable.
* Beyond about 45 degrees the far eye and mouth corner turn out of sight and YuNet
  places them by guess, so the estimate flattens; profiles are not measured. Values
  are clipped to +-:data:`MAX_YAW_DEGREES`.
* Strong pitch combined with yaw, perspective (a face very close to the camera) and
  landmark noise on small faces (about a pixel in a 40-pixel face is 5 degrees) add
  error; it has not been checked against a ground-truth pose dataset.

Sign convention: **positive yaw = the person turns to their own left**, so that the
nose moves toward their left eye, which is on the image's right for an upright face
looking at the camera (the image's right as the viewer sees it). A mirrored image
gives the opposite sign.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["MAX_YAW_DEGREES", "NOSE_DEPTH_RATIO", "yaw_degrees"]

#: Depth of the nose tip in front of the eyes' and mouth corners' plane, in units of
#: the distance between the eyes (a generic adult head; see the module's limits).
NOSE_DEPTH_RATIO = 0.45

#: The largest angle reported either way; the five landmarks do not measure beyond it.
MAX_YAW_DEGREES = 75.0


def yaw_degrees(landmarks: np.ndarray) -> float:
    """The head's yaw in degrees, positive when the person turns to their own left.

    Args:
        landmarks: ``(5, 2)`` ``(x, y)`` pixels in YuNet's order (right eye, left eye,
            nose tip, right mouth corner, left mouth corner: the *person's* right and
            left), e.g. :attr:`faceapp.types.Detection.landmarks`.

    Returns:
        The yaw in ``[-MAX_YAW_DEGREES, MAX_YAW_DEGREES]``: about 0 for a frontal face,
        +30 for a face turned 30 degrees to its left (nose toward the image's right).

    Raises:
        ValueError: not a finite ``(5, 2)`` array, or both eyes at the same point.
    """
    points = np.asarray(landmarks, np.float64)
    if points.shape != (5, 2) or not np.all(np.isfinite(points)):
        raise ValueError(f"landmarks must be a finite (5, 2) array, got shape {points.shape}")
    right_eye, left_eye, nose, right_mouth, left_mouth = points
    eye_line = left_eye - right_eye  # toward the person's left: the image's right when upright
    eye_distance = float(np.hypot(*eye_line))
    if eye_distance < 1e-6:
        raise ValueError("the two eye landmarks coincide: no eye line to measure yaw along")
    midline = ((right_eye + left_eye) / 2.0 + (right_mouth + left_mouth) / 2.0) / 2.0
    offset = float(np.dot(nose - midline, eye_line)) / eye_distance**2
    yaw = math.degrees(math.atan(offset / NOSE_DEPTH_RATIO))
    return float(np.clip(yaw, -MAX_YAW_DEGREES, MAX_YAW_DEGREES))
