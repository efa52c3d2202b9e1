"""Seeded image degradations for the robustness evaluation (``faceapp eval robustness``).

Each condition is a function ``(image, severity, rng, face) -> image``: a BGR uint8
``(H, W, 3)`` image in, a new BGR uint8 image out (the input is never changed);
``severity`` is 1 (mild), 2 or 3 (severe); ``rng`` a :class:`numpy.random.Generator`
(from :func:`image_rng`, so a rerun draws the same noise and angles); ``face`` the
subject's :class:`FaceRegion` in the clean image, which sizes the blurs and places the
occlusions, so that a severity means the same on a small and on a large face. Pure
numpy and OpenCV; nothing is loaded.

The conditions and their parameters (the constants below; "face width" is the
detector's box width in the clean image, about 98 px on LFW's 150x150 crops):

* ``low_light``: gamma darkening ``gain * x ** gamma`` (x in 0..1) then sensor noise:
  Poisson shot noise for a sensor whose white collects ``full_well`` photo-electrons,
  plus Gaussian read noise of ``read_noise`` grey levels, per pixel and channel.
* ``motion_blur``: a straight line kernel of length :data:`MOTION_LENGTH` x face
  width, at a random angle (uniform in 0..180 degrees).
* ``defocus_blur``: a uniform disc kernel of radius :data:`DEFOCUS_RADIUS` x face width.
* ``jpeg``: re-encoded at JPEG quality :data:`JPEG_QUALITY` (30, 20, 10) with OpenCV.
* ``small_face``: the whole image is shrunk (``INTER_AREA``: a sensor's averaging) by
  ``SMALL_FACE_WIDTH / face width``, so the face is :data:`SMALL_FACE_WIDTH` pixels wide
  (40, 32, 24: the clean box scaled, as ``tools/measure_detect_side.py`` defines a face's
  width), and left small: the detector and the alignment then work on the small image,
  as they do on a distant face in a camera frame. (YuNet's box on such a small face
  reads up to about 3 px wider than that.)
* ``eye_band``: a black band along the eye line, :data:`EYE_BAND_HEIGHT` eye distances
  high and :data:`OCCLUDER_WIDTH` eye distances long (sunglasses, a visor, a bar).
* ``mask``: a flat light-blue patch (a surgical mask) from below the chin up to
  :data:`MASK_TOP` of the way from the mouth corners toward the eyes (0.3: the mouth
  and chin; 0.55: up to the nose tip; 0.8: the nose too, as a mask is worn).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "CONDITIONS",
    "SEVERITIES",
    "FaceRegion",
    "condition_parameters",
    "degrade",
    "image_rng",
]

SEVERITIES = (1, 2, 3)

#: ``low_light``, per severity: (gamma, gain, full-well electrons at white, read noise in
#: grey levels). LFW's faces (a mean grey level of 128) come out at about 58, 30 and 15.
LOW_LIGHT = ((1.5, 0.6, 600.0, 1.5), (2.0, 0.4, 300.0, 2.5), (2.5, 0.25, 150.0, 3.5))
#: ``motion_blur``: the blur's length, as a fraction of the face width.
MOTION_LENGTH = (0.06, 0.12, 0.20)
#: ``defocus_blur``: the blur disc's radius, as a fraction of the face width.
DEFOCUS_RADIUS = (0.02, 0.04, 0.07)
#: ``jpeg``: the encoder's quality setting.
JPEG_QUALITY = (30, 20, 10)
#: ``small_face``: the face box's width after shrinking, in pixels.
SMALL_FACE_WIDTH = (40, 32, 24)
#: ``eye_band``: the band's height across the eye line, in eye distances.
EYE_BAND_HEIGHT = (0.35, 0.6, 0.9)
#: ``mask``: the top edge, as a fraction of the way from the mouth corners to the eyes.
MASK_TOP = (0.3, 0.55, 0.8)
#: How far an occluder reaches along the eye line (centred on the face), in eye distances.
OCCLUDER_WIDTH = 2.4
#: How far below the mouth corners the mask reaches, in eye-to-mouth distances (past the chin).
MASK_BOTTOM = 1.2
#: The occluders' colours (BGR): a black band and a light-blue surgical mask.
EYE_BAND_COLOUR = (0, 0, 0)
MASK_COLOUR = (225, 205, 170)
#: A face box's width per eye distance on LFW (median of YuNet's boxes): sizes a face
#: whose box is not known (an image where the detector found no face).
BOX_WIDTH_PER_EYE_DISTANCE = 2.1


@dataclass(frozen=True)
class FaceRegion:
    """Where the subject's face is in a clean image.

    Attributes:
        box: ``(x, y, w, h)`` pixels: the detector's box (or an estimate, see
            :meth:`from_landmarks`).
        landmarks: float ``(5, 2)`` ``(x, y)`` pixels in YuNet's order (right eye, left
            eye, nose, right and left mouth corners).
    """

    box: tuple[float, float, float, float]
    landmarks: np.ndarray

    @property
    def width(self) -> float:
        return float(self.box[2])

    @classmethod
    def from_landmarks(cls, landmarks: np.ndarray) -> FaceRegion:
        """A region whose box is estimated from the landmarks alone (square, centred on
        them, :data:`BOX_WIDTH_PER_EYE_DISTANCE` eye distances wide)."""
        points = np.asarray(landmarks, np.float64)
        side = BOX_WIDTH_PER_EYE_DISTANCE * max(float(np.hypot(*(points[1] - points[0]))), 1.0)
        cx, cy = (float(v) for v in points.mean(axis=0))
        return cls((cx - side / 2, cy - side / 2, side, side), points.astype(np.float32))


def image_rng(seed: int, condition: str, severity: int, image_name: str) -> np.random.Generator:
    """The generator for degrading one image: fixed by the run's seed, the condition,
    the severity and the image's name (not by which other images are in the run)."""
    key = [int(seed), zlib.crc32(condition.encode()), int(severity), zlib.crc32(image_name.encode())]
    return np.random.default_rng(np.random.SeedSequence(key))


# ----------------------------------------------------------------------------- conditions
def low_light(image: np.ndarray, severity: int, rng: np.random.Generator, face: FaceRegion) -> np.ndarray:
    gamma, gain, full_well, read_noise = LOW_LIGHT[severity - 1]
    signal = gain * (image.astype(np.float64) / 255.0) ** gamma
    electrons = rng.poisson(signal * full_well).astype(np.float64)
    levels = electrons * (255.0 / full_well) + rng.normal(0.0, read_noise, image.shape)
    return np.clip(np.rint(levels), 0, 255).astype(np.uint8)


def line_kernel(length: float, angle: float) -> np.ndarray:
    """A normalised float32 kernel: a line ``length`` px long at ``angle`` radians,
    drawn with sub-pixel (bilinear) weights; odd square size."""
    length = max(float(length), 1.0)
    size = 2 * math.ceil(length / 2) + 1
    centre = size // 2
    steps = np.linspace(-length / 2, length / 2, max(2, int(8 * length)))
    xs, ys = centre + steps * math.cos(angle), centre + steps * math.sin(angle)
    kernel = np.zeros((size + 1, size + 1), np.float64)
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for dx, dy, weight in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(kernel, (y0 + dy, x0 + dx), weight)
    kernel = kernel[:size, :size]
    return (kernel / kernel.sum()).astype(np.float32)


def disc_kernel(radius: float) -> np.ndarray:
    """A normalised float32 uniform disc of ``radius`` px (edge pixels weighted by the
    share of them inside the disc, from 8x8 sub-samples); odd square size."""
    radius = max(float(radius), 0.5)
    half = math.ceil(radius)
    offsets = (np.arange(8) + 0.5) / 8 - 0.5
    grid = np.arange(-half, half + 1, dtype=np.float64)
    x = grid[None, :, None, None] + offsets[None, None, None, :]
    y = grid[:, None, None, None] + offsets[None, None, :, None]
    kernel = ((x**2 + y**2) <= radius**2).mean(axis=(2, 3))
    return (kernel / kernel.sum()).astype(np.float32)


def _filter(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT)


def motion_blur(image: np.ndarray, severity: int, rng: np.random.Generator, face: FaceRegion) -> np.ndarray:
    angle = float(rng.uniform(0.0, math.pi))
    return _filter(image, line_kernel(MOTION_LENGTH[severity - 1] * face.width, angle))


def defocus_blur(image: np.ndarray, severity: int, rng: np.random.Generator, face: FaceRegion) -> np.ndarray:
    return _filter(image, disc_kernel(DEFOCUS_RADIUS[severity - 1] * face.width))


def jpeg(image: np.ndarray, severity: int, rng: np.random.Generator, face: FaceRegion) -> np.ndarray:
    import cv2

    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY[severity - 1]])
    if not ok:
        raise ValueError("OpenCV could not JPEG-encode the image")
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


def small_face(image: np.ndarray, severity: int, rng: np.random.Generator, face: FaceRegion) -> np.ndarray:
    import cv2

    scale = SMALL_FACE_WIDTH[severity - 1] / max(face.width, 1.0)
    if scale >= 1.0:
        return image.copy()  # already that small: left as it is
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _face_frame(face: FaceRegion) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """The face's own axes: (eye midpoint, unit eye line toward the person's left, unit
    downward axis, eye distance, eye-to-mouth distance along the downward axis)."""
    points = np.asarray(face.landmarks, np.float64)
    eyes = (points[0] + points[1]) / 2.0
    along = points[1] - points[0]
    distance = max(float(np.hypot(*along)), 1.0)
    along = along / distance
    down = np.array([-along[1], along[0]])
    mouth = (points[3] + points[4]) / 2.0
    return eyes, along, down, distance, max(float(np.dot(mouth - eyes, down)), 1.0)


def _fill(image: np.ndarray, corners: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    import cv2

    out = image.copy()
    cv2.fillConvexPoly(out, np.rint(corners * 16).astype(np.int32), colour, lineType=cv2.LINE_AA, shift=4)
    return out


def _rectangle(centre: np.ndarray, along: np.ndarray, down: np.ndarray, half_width: float, top: float, bottom: float) -> np.ndarray:
    """The corners ``(4, 2)`` of a rectangle in the face's axes: ``half_width`` either side
    of ``centre`` along the eye line, from ``top`` to ``bottom`` along the downward axis."""
    return np.array([centre + s * half_width * along + t * down for s, t in ((-1, top), (1, top), (1, bottom), (-1, bottom))])


def eye_band(image: np.ndarray, severity: int, rng: np.random.Generator, face: FaceRegion) -> np.ndarray:
    eyes, along, down, distance, _ = _face_frame(face)
    half_height = EYE_BAND_HEIGHT[severity - 1] * distance / 2.0
    corners = _rectangle(eyes, along, down, OCCLUDER_WIDTH * distance / 2.0, -half_height, half_height)
    return _fill(image, corners, EYE_BAND_COLOUR)


def mask(image: np.ndarray, severity: int, rng: np.random.Generator, face: FaceRegion) -> np.ndarray:
    eyes, along, down, distance, eye_to_mouth = _face_frame(face)
    mouth_line = eye_to_mouth  # along the downward axis, from the eyes
    top = mouth_line - MASK_TOP[severity - 1] * eye_to_mouth
    corners = _rectangle(eyes, along, down, OCCLUDER_WIDTH * distance / 2.0, top, mouth_line + MASK_BOTTOM * eye_to_mouth)
    return _fill(image, corners, MASK_COLOUR)


Degradation = Callable[[np.ndarray, int, np.random.Generator, FaceRegion], np.ndarray]

#: Every condition, in the order reports list them.
CONDITIONS: dict[str, Degradation] = {
    "low_light": low_light,
    "motion_blur": motion_blur,
    "defocus_blur": defocus_blur,
    "jpeg": jpeg,
    "small_face": small_face,
    "eye_band": eye_band,
    "mask": mask,
}


def condition_parameters(condition: str, severity: int) -> str:
    """The parameters of ``condition`` at ``severity``, as a short phrase for reports."""
    index = severity - 1
    if condition == "low_light":
        gamma, gain, full_well, read_noise = LOW_LIGHT[index]
        return f"gamma {gamma:g}, gain {gain:g}, {full_well:g} e- at white, read noise {read_noise:g}"
    return {
        "motion_blur": f"line {MOTION_LENGTH[index]:g} x face width, random angle",
        "defocus_blur": f"disc radius {DEFOCUS_RADIUS[index]:g} x face width",
        "jpeg": f"quality {JPEG_QUALITY[index]}",
        "small_face": f"face {SMALL_FACE_WIDTH[index]} px wide",
        "eye_band": f"band {EYE_BAND_HEIGHT[index]:g} eye distances high",
        "mask": f"top {MASK_TOP[index]:g} of mouth-to-eyes",
    }[condition]


def degrade(image: np.ndarray, condition: str, severity: int, rng: np.random.Generator, face: FaceRegion) -> np.ndarray:
    """``image`` (BGR uint8 ``(H, W, 3)``) under ``condition`` at ``severity`` (1..3): a
    new BGR uint8 image (smaller for ``small_face``). Raises ValueError for an unknown
    condition, a severity out of range or an image that is not BGR uint8."""
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; expected one of {', '.join(CONDITIONS)}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected a BGR uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    return CONDITIONS[condition](image, severity, rng, face)
