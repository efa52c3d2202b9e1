"""dlib's face chips from 5 landmarks, in numpy (what ``dlib.get_face_chip`` cuts).

The input of dlib's face recognition ResNet (:mod:`faceapp.embedding.dlib_resnet`) is a
150x150 chip cut this way, redone here from dlib's ``get_face_chip_details`` and
``extract_image_chips`` (``dlib/image_transforms/interpolation.h``, v20.0.1):

1. :func:`chip_details`: dlib's mean 5-point face (eye corners and the bottom of the nose,
   in the unit square), shrunk into the chip by the padding (``(padding + p) / (2 *
   padding + 1) * size``), is fitted to the landmarks by a least-squares similarity
   transform (Umeyama). Its rotation and scale give the chip's angle and the rectangle
   in the image that the chip covers.
2. :func:`extract_chip`: while halving that rectangle would still leave more pixels than
   the chip has (it holds about 4 times as many), the region around it (grown by a
   margin, clipped to the image) is halved with dlib's ``pyramid_down<2>`` (a 1-4-6-4-1
   filter in integers, every other row and column), level after level. The chip is
   then sampled from the last level with bilinear interpolation, truncated to integers
   as dlib does; samples that fall outside the source (or on its last row or column)
   are black.

Landmarks: float ``(5, 2)`` pixel ``(x, y)`` in the order of dlib's 5-point shape
predictor (``shape_predictor_5_face_landmarks.dat``): the outer and the inner corner of
the eye on the image's right (the person's left eye), the outer and the inner corner of
the other eye, the bottom of the nose. dlib's predictor gives whole pixels; pass those to
cut exactly dlib's chip. Images: uint8 ``(H, W, C)``; every channel is treated alike, so
a BGR image gives the BGR chip (dlib cuts RGB ones).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CHIP_SIZE = 150
CHIP_PADDING = 0.25
#: dlib's mean face for its 5-point model, in the unit square (x, y).
MEAN_FACE_5 = np.array([
    [0.8595674595992, 0.2134981538014],
    [0.6460604764104, 0.2289674387677],
    [0.1205750620789, 0.2137274526848],
    [0.3340850613712, 0.2290642403242],
    [0.4901123135679, 0.6277975316475],
])


@dataclass(frozen=True)
class ChipDetails:
    """Where a chip lies in the image (dlib's ``chip_details``): the rectangle ``(left, top,
    right, bottom)`` in pixels (inclusive corners, before rotation), the rotation ``angle``
    in radians about its centre, and the chip's ``rows`` x ``cols``."""

    rect: tuple[float, float, float, float]
    angle: float
    rows: int
    cols: int


def _similarity(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares similarity transform ``target ~ matrix @ source + offset`` (Umeyama,
    as dlib's ``find_similarity_transform``)."""
    mean_source, mean_target = source.mean(axis=0), target.mean(axis=0)
    centred_source, centred_target = source - mean_source, target - mean_target
    variance = float((centred_source**2).sum()) / len(source)
    covariance = centred_target.T @ centred_source / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    signs = np.ones(2)
    determinant = np.linalg.det(covariance)
    if determinant < 0 or (determinant == 0 and np.linalg.det(u) * np.linalg.det(vt) < 0):
        signs[1 if singular[1] < singular[0] else 0] = -1
    rotation = u @ np.diag(signs) @ vt
    scale = float(singular @ signs) / variance if variance != 0 else 1.0
    return scale * rotation, mean_target - scale * rotation @ mean_source


def chip_details(landmarks: np.ndarray, size: int = CHIP_SIZE, padding: float = CHIP_PADDING) -> ChipDetails:
    """The chip of the face with these 5 landmarks (see the module docstring)."""
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (5, 2) or not np.isfinite(points).all():
        raise ValueError(f"expected 5 finite (x, y) landmarks, got an array of shape {points.shape}")
    if size <= 0 or padding < 0:
        raise ValueError(f"size must be positive and padding not negative, got {size}, {padding}")
    template = (padding + MEAN_FACE_5) / (2 * padding + 1) * size
    matrix, offset = _similarity(template, points)
    scale = math.hypot(matrix[0, 0], matrix[1, 0])
    angle = math.atan2(matrix[1, 0], matrix[0, 0])
    centre = matrix @ np.array([size / 2.0, size / 2.0]) + offset
    half_width = (size * scale - 1) / 2  # dlib's centered_drect: width - 1 between the corners
    rect = (centre[0] - half_width, centre[1] - half_width, centre[0] + half_width, centre[1] + half_width)
    return ChipDetails(tuple(float(v) for v in rect), angle, size, size)


# --------------------------------------------------------------------------- dlib's geometry
def _area(rect) -> float:
    left, top, right, bottom = rect
    if left > right or top > bottom:
        return 0.0
    return (right - left + 1) * (bottom - top + 1)


def _rect_down(rect):
    """A rectangle's corners one ``pyramid_down<2>`` level down (``p / 2 - (1.25, 0.75)``)."""
    left, top, right, bottom = rect
    x1, y1, x2, y2 = left / 2 - 1.25, top / 2 - 0.75, right / 2 - 1.25, bottom / 2 - 0.75
    return (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))


def _rotated_corners(rect, angle: float, which: str = "tl tr bl br") -> np.ndarray:
    """``rect``'s corners rotated by ``angle`` about its centre (dlib's ``rotate_point``)."""
    left, top, right, bottom = rect
    corners = {"tl": (left, top), "tr": (right, top), "bl": (left, bottom), "br": (right, bottom)}
    cx, cy = (left + right) / 2.0, (top + bottom) / 2.0
    cos, sin = math.cos(angle), math.sin(angle)
    out = []
    for name in which.split():
        x, y = corners[name][0] - cx, corners[name][1] - cy
        out.append((cos * x - sin * y + cx, sin * x + cos * y + cy))
    return np.array(out)


def _lround(value: float) -> int:
    """C's ``lround``: halves away from zero."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def pyramid_down(image: np.ndarray) -> np.ndarray:
    """dlib's ``pyramid_down<2>`` of a uint8 ``(H, W, C)`` image: ``((H-3)//2, (W-3)//2, C)``,
    the 5x5 kernel [1 4 6 4 1]^2 / 256 on every other row and column, in integers
    (floored); empty when ``H`` or ``W`` is 8 or less."""
    height, width = image.shape[:2]
    if height <= 8 or width <= 8:
        return np.zeros((0, 0) + image.shape[2:], np.uint8)
    source = image.astype(np.int32)
    columns = (width - 3) // 2
    weights = (1, 4, 6, 4, 1)
    rows_filtered = sum(w * source[:, k : k + 2 * columns : 2] for k, w in enumerate(weights))
    out_rows = (height - 3) // 2
    filtered = sum(w * rows_filtered[k : k + 2 * out_rows : 2] for k, w in enumerate(weights))
    return (filtered // 256).astype(np.uint8)


def _bilinear(source: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dlib's ``interpolate_bilinear`` at float positions ``x, y``: values truncated to
    uint8; 0 where the 2x2 neighbourhood is not inside ``source``."""
    height, width = source.shape[:2]
    left, top = np.floor(x), np.floor(y)
    inside = (left >= 0) & (top >= 0) & (left + 1 < width) & (top + 1 < height)
    out = np.zeros(x.shape + source.shape[2:], np.uint8)
    if not inside.any():
        return out
    li, ti = left[inside].astype(np.intp), top[inside].astype(np.intp)
    fx, fy = (x[inside] - left[inside])[:, None], (y[inside] - top[inside])[:, None]
    pixels = source.astype(np.float64)
    tl, tr = pixels[ti, li], pixels[ti, li + 1]
    bl, br = pixels[ti + 1, li], pixels[ti + 1, li + 1]
    value = (1 - fy) * ((1 - fx) * tl + fx * tr) + fy * ((1 - fx) * bl + fx * br)
    out[inside] = value.astype(np.uint8)  # a C cast: truncation
    return out


def extract_chip(image: np.ndarray, details: ChipDetails) -> np.ndarray:
    """The chip ``details`` describes, cut from the uint8 ``(H, W, C)`` ``image``:
    uint8 ``(rows, cols, C)``."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"expected a uint8 (H, W, C) image, got {image.dtype} {image.shape}")
    rows, cols, rect, angle = details.rows, details.cols, details.rect, details.angle
    pixels = rows * cols
    if rect[0] > rect[2] or rect[1] > rect[3] or pixels == 0:
        raise ValueError(f"empty chip {details}")
    chip = np.zeros((rows, cols) + image.shape[2:], np.uint8)
    if angle == 0 and rows == _height(rect) and cols == _width(rect):
        return _copy_chip(image, rect, chip)
    height, width = image.shape[:2]
    # How many pyramid levels, and how much of the image they need.
    depth, grow, down = 0, 2.0, _rect_down(rect)
    while _area(down) > pixels:
        down, depth, grow = _rect_down(down), depth + 1, grow * 2 + 2
    corners = _rotated_corners(rect, angle)
    region = (max(corners[:, 0].min() - grow, 0), max(corners[:, 1].min() - grow, 0),
              min(corners[:, 0].max() + grow, width - 1), min(corners[:, 1].max() + grow, height - 1))
    box_left, box_top, box_right, box_bottom = (_lround(v) for v in region)
    if box_left > box_right or box_top > box_bottom:
        return chip  # the chip lies outside the image
    source = image[box_top : box_bottom + 1, box_left : box_right + 1]
    local = (rect[0] - box_left, rect[1] - box_top, rect[2] - box_left, rect[3] - box_top)
    while _area(_rect_down(local)) > pixels:
        local = _rect_down(local)
        source = pyramid_down(source)
    # The affine map from chip pixels to the source through three corners.
    targets = _rotated_corners(local, angle, "tl tr bl")
    corners_chip = np.array([[0.0, 0.0, 1.0], [cols - 1.0, 0.0, 1.0], [0.0, rows - 1.0, 1.0]])
    mapping = np.linalg.solve(corners_chip, targets).T  # (2, 3): [[m00, m01, tx], [m10, m11, ty]]
    c, r = np.meshgrid(np.arange(cols, dtype=np.float64), np.arange(rows, dtype=np.float64))
    x = mapping[0, 0] * c + mapping[0, 1] * r + mapping[0, 2]
    y = mapping[1, 0] * c + mapping[1, 1] * r + mapping[1, 2]
    return _bilinear(source, x, y)


def _width(rect) -> float:
    return rect[2] - rect[0] + 1


def _height(rect) -> float:
    return rect[3] - rect[1] + 1


def _copy_chip(image: np.ndarray, rect, chip: np.ndarray) -> np.ndarray:
    """An axis-aligned chip at the image's own scale: a plain copy (zeros outside)."""
    left, top = _lround(rect[0]), _lround(rect[1])
    rows, cols = chip.shape[:2]
    height, width = image.shape[:2]
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + rows, height), min(left + cols, width)
    if y0 < y1 and x0 < x1:
        chip[y0 - top : y1 - top, x0 - left : x1 - left] = image[y0:y1, x0:x1]
    return chip


def face_chip(image: np.ndarray, landmarks: np.ndarray, size: int = CHIP_SIZE,
              padding: float = CHIP_PADDING) -> np.ndarray:
    """``dlib.get_face_chip(image, shape, size, padding)`` from the 5 landmarks of one
    face: uint8 ``(size, size, C)``, in the image's channel order."""
    return extract_chip(image, chip_details(landmarks, size, padding))
