"""dlib's 150x150 face chip cut from YuNet's 5 landmarks (numpy + OpenCV, no dlib).

dlib's face recognition ResNet (:mod:`faceapp.embedding.dlib_resnet`) wants the chip
``dlib.get_face_chip(image, shape, 150, 0.25)`` cuts from the 5 points of dlib's own shape
predictor (eye corners, bottom of the nose; see :mod:`faceapp.vision.dlib_chip`). The app's
detector gives other points (eye centres, nose tip, mouth corners), so here the chip is
cut by the least-squares similarity transform that takes YuNet's 5 points to
:data:`DLIB_CHIP_TEMPLATE`: where YuNet's points fall, on average, in dlib's own chip.

The cut follows dlib's sampling (``extract_image_chips``): when the chip covers more than
twice its width of image pixels, the region around the face is first halved with
``cv2.pyrDown`` (the same 1-4-6-4-1 filter as dlib's ``pyramid_down<2>``) until it does
not, with dlib's sub-pixel offset of those levels; then the chip is sampled bilinearly
(``cv2.warpAffine``; black outside the image). dlib truncates where OpenCV rounds, so
dlib's chips are a little darker; through the same geometry, the two chips of the 12
fixture faces (5 of them through one pyramid level) differ by 0.75 grey levels on average
(the worst face 1.1) and dlib's descriptors of them have cosine 0.9998 or more
(``tests/test_dlib_align.py``). It takes about 0.2 ms a chip on 2 cores, where
:func:`faceapp.vision.dlib_chip.extract_chip` (dlib's own sampling in numpy) takes 3-7 ms.

Landmarks: float ``(5, 2)`` ``(x, y)`` pixels in YuNet's order (right eye, left eye, nose
tip, right and left mouth corners: the person's right first; see :mod:`faceapp.types`).
Images: uint8 ``(H, W, C)``; every channel is treated alike, so a BGR image (the app's)
gives a BGR chip, an RGB image an RGB one.
"""

from __future__ import annotations

import math

import numpy as np

from faceapp.vision.alignment import similarity_transform

CHIP_SIZE = 150
CHIP_PADDING = 0.25

#: Where YuNet's five landmarks (right eye, left eye, nose tip, right and left mouth
#: corners; ``(x, y)``) fall in dlib's 150x150 chip (padding 0.25), in chip pixels.
#: Made by ``tools/derive_dlib_template.py``: the mean, over 807 faces, of YuNet's points
#: mapped into dlib's own chip of the face (dlib's HOG detector + 5-point predictor +
#: ``get_face_chip``'s geometry), YuNet's points found as ``faceapp eval lfw`` finds them
#: (1x and 2x, averaged). The faces: the 12 of the 9 fixture photos
#: (``../shared/fixtures/faces``) and 795 of the 807 images of LFW pairs fold 1
#: (``../shared/data/lfw``; 7 without a HOG face, 5 whose HOG face is not YuNet's). Fold 1's
#: people are in no other fold: LFW folds 2-10 are out of sample, fold 1 is not. On those
#: faces the chip cut through it is 6.5 px RMS from dlib's over a 7x7 grid of chip points
#: (the points' own spread is 2.5-7 px: the nose tip's x moves with the yaw), and dlib's
#: descriptors of the two chips have cosine 0.9935 on average (1st percentile 0.977).
DLIB_CHIP_TEMPLATE = np.array(
    [
        [45.0223, 44.4884],
        [102.2761, 44.0198],
        [73.9385, 78.4648],
        [49.8607, 104.2228],
        [98.6305, 104.0082],
    ],
    dtype=np.float64,
)


def chip_transform(landmarks: np.ndarray, template: np.ndarray = DLIB_CHIP_TEMPLATE) -> np.ndarray:
    """The 2x3 float64 matrix taking image pixels to chip pixels (for ``cv2.warpAffine``):
    the similarity transform of YuNet's ``(5, 2)`` ``landmarks`` onto ``template``."""
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (5, 2) or not np.isfinite(points).all():
        raise ValueError(f"expected 5 finite (x, y) landmarks, got an array of shape {points.shape}")
    if np.ptp(points, axis=0).max() <= 0:
        raise ValueError("the 5 landmarks coincide")
    return similarity_transform(points, template)


def pyramid_levels(matrix: np.ndarray, size: int = CHIP_SIZE) -> int:
    """How many times dlib halves the image before sampling a ``size`` chip through
    ``matrix`` (image -> chip): while the halved rectangle would still hold more pixels
    than the chip (dlib's ``extract_image_chips``)."""
    scale = 1.0 / math.hypot(matrix[0, 0], matrix[1, 0])  # image pixels per chip pixel
    width, levels = size * scale, 0
    while (width + 1) / 2 > size:  # dlib: (right - left + 1) of the rectangle one level down
        width, levels = (width + 1) / 2, levels + 1
    return levels


def cut_chip(image: np.ndarray, matrix: np.ndarray, size: int = CHIP_SIZE) -> np.ndarray:
    """The ``size`` x ``size`` chip that the 2x3 ``matrix`` (image pixels -> chip pixels)
    cuts from the uint8 ``(H, W, C)`` ``image``: uint8 ``(size, size, C)``, same channel
    order; black where the chip leaves the image."""
    import cv2

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"expected a uint8 (H, W, C) image, got {image.dtype} {image.shape}")
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (2, 3) or not np.isfinite(matrix).all() or abs(np.linalg.det(matrix[:, :2])) < 1e-12:
        raise ValueError(f"expected an invertible 2x3 affine matrix, got {matrix}")
    levels = pyramid_levels(matrix, size)
    if levels:
        # dlib maps coordinates one level down as p / 2 - (1.25, 0.75) while its filter
        # centres the pixel there at 2 p + 2 of the level above: its chips through L levels
        # sample the image (-0.5, +0.5) * (2**L - 1) pixels away from the exact place. So do we.
        offset = 0.5 * (2**levels - 1) * np.array([-1.0, 1.0])
        matrix = np.hstack([matrix[:, :2], matrix[:, 2:] - matrix[:, :2] @ offset[:, None]])
        # Only the region under the chip (and the filter's reach) is halved.
        inverse = cv2.invertAffineTransform(matrix)
        corners = np.array([[0, 0, 1], [size - 1, 0, 1], [0, size - 1, 1], [size - 1, size - 1, 1]], np.float64)
        footprint = corners @ inverse.T
        margin = 2 ** (levels + 2)
        height, width = image.shape[:2]
        left = int(max(math.floor(footprint[:, 0].min()) - margin, 0))
        top = int(max(math.floor(footprint[:, 1].min()) - margin, 0))
        right = int(min(math.ceil(footprint[:, 0].max()) + margin, width))
        bottom = int(min(math.ceil(footprint[:, 1].max()) + margin, height))
        if left >= right or top >= bottom:
            return np.zeros((size, size) + image.shape[2:], np.uint8)
        source = image[top:bottom, left:right]
        halved = 0
        for _ in range(levels):
            if min(source.shape[:2]) < 2:
                break
            source = cv2.pyrDown(source)
            halved += 1
        factor = 2.0 ** halved  # pyrDown: pixel i of the half image is pixel 2i of the source
        matrix = np.hstack([matrix[:, :2] * factor, matrix[:, :2] @ np.array([left, top], np.float64)[:, None] + matrix[:, 2:]])
        image = source if source.ndim == 3 else source[..., None]
    chip = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return chip if chip.ndim == 3 else chip[..., None]


def dlib_chip(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """dlib's 150x150 chip (padding 0.25) of the face with YuNet's ``(5, 2)`` ``landmarks``
    in the uint8 ``(H, W, C)`` ``image``: uint8 ``(150, 150, C)``, in the image's channel
    order (BGR in, BGR out: :func:`faceapp.embedding.dlib_resnet.to_model_input` makes the
    network's RGB input from it)."""
    return cut_chip(image, chip_transform(landmarks))
