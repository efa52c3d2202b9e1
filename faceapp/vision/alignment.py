"""5-point face alignment to the ArcFace 112x112 template (pure numpy + one warp).

The same function serves enrollment, recognition, evaluation and training.
"""

from __future__ import annotations

import numpy as np

ALIGNED_SIZE = 112

#: Where the five landmarks (right eye, left eye, nose, right and left mouth corners)
#: sit in a 112x112 ArcFace crop, as (x, y) pixels.
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping
    ``source`` points onto ``target`` points (Umeyama, 1991).

    Both are ``(K, 2)`` arrays; returns the 2x3 float64 matrix for ``cv2.warpAffine``.
    """
    source = np.asarray(source, np.float64)
    target = np.asarray(target, np.float64)
    if source.shape != target.shape or source.ndim != 2 or source.shape[1] != 2:
        raise ValueError(f"need two (K, 2) point arrays, got {source.shape} and {target.shape}")
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    source_centred, target_centred = source - source_mean, target - target_mean
    covariance = target_centred.T @ source_centred / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rotation = u @ np.diag(sign) @ vt
    variance = source_centred.var(axis=0).sum()
    scale = (singular * sign).sum() / variance if variance > 0 else 1.0
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = target_mean - scale * rotation @ source_mean
    return matrix


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = ALIGNED_SIZE) -> np.ndarray:
    """Warp the face with these 5 landmarks to the ArcFace template.

    ``image``: BGR uint8 ``(H, W, 3)``; ``landmarks``: ``(5, 2)`` (x, y) in its pixels.
    Returns a BGR uint8 ``(size, size, 3)`` crop (the template is scaled for other sizes).
    """
    import cv2

    template = ARCFACE_TEMPLATE * (size / ALIGNED_SIZE)
    matrix = similarity_transform(np.asarray(landmarks, np.float64).reshape(5, 2), template)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
