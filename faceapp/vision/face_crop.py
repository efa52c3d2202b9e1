"""The wide face crop the gallery stores, from which every model's input is cut again.

The app stores one picture of each enrolled face and each sighting (the "thumbnail"):
since this module, a 224 x 224 crop aligned in the ArcFace frame with a margin, so that
``gallery reembed`` can cut both the 112 x 112 ArcFace crop (SFace) and dlib's 150 x 150
chip (the fused model) from it. Older galleries hold the 112 x 112 ArcFace crop itself,
which is too tight for dlib's chip (that chip reaches ~9 px below it); those are still
read as 112 x 112 crops.

Geometry: the wide crop is the ArcFace-aligned face scaled by :data:`WIDE_SCALE` (1.5) and
shifted by :data:`WIDE_OFFSET` (24 px): the 5 landmarks are mapped onto
``ARCFACE_TEMPLATE * 1.5 + 24``. It covers ArcFace pixels -16 .. 133 (the 112 crop is its
square 24 .. 192); dlib's chip covers ArcFace pixels ~8 .. 106 across and ~23 .. 121 down,
at 1.54 chip pixels per ArcFace pixel, so 1.5 wide-crop pixels per ArcFace pixel keep it
from being enlarged much.

dlib's chip is cut from the wide crop by one fixed similarity transform (the least-squares
map of the wide template onto :data:`~faceapp.vision.dlib_align.DLIB_CHIP_TEMPLATE`), not
from the landmarks. Measured on 309 faces (``python tools/measure_wide_crop.py``: 300 LFW
images and the fixture photos; wide crops stored as JPEG 90, as the gallery does): dlib's
descriptors of such chips have cosine 0.9994 on average with those of the live chip (1st
percentile 0.9985, worst 0.9983), and SFace's of the 112 crop cut from the wide one 0.9971
(1st percentile 0.9879, worst 0.9763, on a large face the live warp samples coarsely) --
closer than SFace's of the JPEG 112 thumbnail stored before (0.9952, 0.9870, 0.9682).
Finding the landmarks again in the wide crop did worse (0.9910 for dlib).

Images: BGR uint8 ``(H, W, 3)``; landmarks: float ``(5, 2)`` ``(x, y)`` pixels in YuNet's
order (see :mod:`faceapp.types`).
"""

from __future__ import annotations

import numpy as np

from faceapp.vision.alignment import ALIGNED_SIZE, ARCFACE_TEMPLATE, similarity_transform

WIDE_SIZE = 224
WIDE_SCALE = 1.5
WIDE_OFFSET = 24.0
#: Where the 5 landmarks sit in the wide crop.
WIDE_TEMPLATE = ARCFACE_TEMPLATE * WIDE_SCALE + WIDE_OFFSET
#: Wide-crop pixels -> ArcFace-crop pixels (its 168 x 168 square at 24 .. 192).
_WIDE_TO_TIGHT = np.array([[1 / WIDE_SCALE, 0.0, -WIDE_OFFSET / WIDE_SCALE], [0.0, 1 / WIDE_SCALE, -WIDE_OFFSET / WIDE_SCALE]])


def wide_crop(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The BGR uint8 ``(224, 224, 3)`` wide crop of the face with these ``(5, 2)`` landmarks
    in the BGR ``image`` (bilinear, black outside the image)."""
    import cv2

    matrix = similarity_transform(np.asarray(landmarks, np.float64).reshape(5, 2), WIDE_TEMPLATE)
    return cv2.warpAffine(image, matrix, (WIDE_SIZE, WIDE_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def is_wide(image: np.ndarray) -> bool:
    """Whether a stored face picture is a wide crop (else the older 112 x 112 ArcFace crop)."""
    return image.ndim == 3 and image.shape[:2] == (WIDE_SIZE, WIDE_SIZE)


def tight_from_wide(wide: np.ndarray) -> np.ndarray:
    """The 112 x 112 ArcFace crop inside a wide crop: BGR uint8 ``(112, 112, 3)``, sampled
    bilinearly as the live alignment is (area averaging and a plain resize were measured
    too: SFace's cosine to the live crop's embedding 0.9949 and 0.9953 on average over 158
    faces, bilinear sampling 0.9966)."""
    import cv2

    return cv2.warpAffine(wide, _WIDE_TO_TIGHT, (ALIGNED_SIZE, ALIGNED_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT)


def chip_from_wide(wide: np.ndarray) -> np.ndarray:
    """dlib's 150 x 150 chip of the face of a wide crop: BGR uint8 ``(150, 150, 3)``."""
    from faceapp.vision.dlib_align import DLIB_CHIP_TEMPLATE, cut_chip

    return cut_chip(wide, similarity_transform(WIDE_TEMPLATE, DLIB_CHIP_TEMPLATE))
