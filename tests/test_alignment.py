"""Alignment: the similarity fit (pure numpy) and the warp to the ArcFace template."""

from __future__ import annotations

import math

import numpy as np
import pytest

from faceapp.vision.alignment import ALIGNED_SIZE, ARCFACE_TEMPLATE, align_face, similarity_transform


def similarity(scale: float, degrees: float, tx: float, ty: float) -> np.ndarray:
    """The 2x3 matrix of a similarity: rotate by ``degrees``, scale, then translate."""
    angle = math.radians(degrees)
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    return np.array([[c, -s, tx], [s, c, ty]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def test_template_maps_onto_itself():
    matrix = similarity_transform(ARCFACE_TEMPLATE, ARCFACE_TEMPLATE)
    np.testing.assert_allclose(matrix, [[1, 0, 0], [0, 1, 0]], atol=1e-12)


@pytest.mark.parametrize(
    "scale, degrees, tx, ty",
    [(1.0, 0.0, 10.0, -5.0), (2.5, 30.0, 100.0, 40.0), (0.4, -75.0, -3.0, 7.5), (3.0, 179.0, 500.0, 250.0)],
)
def test_recovers_a_known_similarity_exactly(scale, degrees, tx, ty):
    known = similarity(scale, degrees, tx, ty)
    moved = apply(known, ARCFACE_TEMPLATE)
    # Fitting template -> moved gives the known matrix; moved -> template its inverse.
    np.testing.assert_allclose(similarity_transform(ARCFACE_TEMPLATE, moved), known, atol=1e-9)
    back = similarity_transform(moved, ARCFACE_TEMPLATE)
    np.testing.assert_allclose(apply(back, moved), ARCFACE_TEMPLATE, atol=1e-9)


def test_never_returns_a_reflection():
    mirrored = ARCFACE_TEMPLATE * [-1.0, 1.0]  # a mirror image of the template
    matrix = similarity_transform(mirrored, ARCFACE_TEMPLATE)
    assert np.linalg.det(matrix[:, :2]) > 0


def test_least_squares_with_noise_stays_close():
    rng = np.random.default_rng(0)
    known = similarity(1.7, 12.0, 40.0, 20.0)
    noisy = apply(known, ARCFACE_TEMPLATE) + rng.normal(scale=0.5, size=ARCFACE_TEMPLATE.shape)
    fitted = similarity_transform(ARCFACE_TEMPLATE, noisy)
    np.testing.assert_allclose(fitted[:, :2], known[:, :2], atol=0.05)
    assert np.abs(apply(fitted, ARCFACE_TEMPLATE) - noisy).max() < 2.0


@pytest.mark.parametrize(
    "source, target",
    [(np.zeros((5, 2)), np.zeros((4, 2))), (np.zeros((5, 3)), np.zeros((5, 3))), (np.zeros(10), np.zeros(10))],
)
def test_rejects_bad_point_arrays(source, target):
    with pytest.raises(ValueError):
        similarity_transform(source, target)


def marked_face(size: int = ALIGNED_SIZE) -> np.ndarray:
    """A grey BGR image with a distinct coloured square on each template landmark."""
    import cv2

    image = np.full((size, size, 3), 90, np.uint8)
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]
    for (x, y), colour in zip(ARCFACE_TEMPLATE * size / ALIGNED_SIZE, colours):
        cv2.rectangle(image, (int(x) - 3, int(y) - 3), (int(x) + 3, int(y) + 3), colour, -1)
    return image


def test_align_face_undoes_a_known_warp():
    import cv2

    face = marked_face()
    known = similarity(2.2, -25.0, 180.0, 120.0)
    frame = cv2.warpAffine(face, known, (480, 400), flags=cv2.INTER_LINEAR)
    landmarks = apply(known, ARCFACE_TEMPLATE).astype(np.float32)
    aligned = align_face(frame, landmarks)
    assert aligned.shape == (112, 112, 3) and aligned.dtype == np.uint8
    # Each landmark's square comes back on its template point, in its colour.
    for (x, y) in ARCFACE_TEMPLATE:
        np.testing.assert_allclose(aligned[int(y), int(x)], face[int(y), int(x)], atol=12)
    inner = (slice(10, 102), slice(10, 102))  # skip the warp's blurred outer edge
    assert np.abs(aligned[inner].astype(int) - face[inner].astype(int)).mean() < 3.0


def test_align_face_other_sizes_scale_the_template():
    import cv2

    face = marked_face(224)
    known = similarity(1.3, 10.0, 50.0, 30.0)
    frame = cv2.warpAffine(face, known, (420, 420))
    landmarks = apply(known, ARCFACE_TEMPLATE * 2)
    aligned = align_face(frame, landmarks, size=224)
    assert aligned.shape == (224, 224, 3)
    for (x, y) in ARCFACE_TEMPLATE * 2:
        np.testing.assert_allclose(aligned[int(y), int(x)], face[int(y), int(x)], atol=12)


def test_matches_opencv_align_crop_on_fixture_faces(fixture_faces, sface_onnx):
    """Our alignment equals OpenCV's FaceRecognizerSF.alignCrop on real detections.

    Observed on OpenCV 5.0: at most 1 grey level apart, on ~0.1% of the values (rounding
    of the same warp); asserted: at most 2 levels, on under 1% of the values."""
    import cv2

    opencv = cv2.FaceRecognizerSF.create(str(sface_onnx), "")
    compared = 0
    for name, (image, detections) in fixture_faces.items():
        for detection in detections:
            ours = align_face(image, detection.landmarks)
            row = np.array([[*detection.box, *detection.landmarks.ravel(), detection.score]], np.float32)
            theirs = opencv.alignCrop(image, row)
            difference = np.abs(ours.astype(int) - theirs.astype(int))
            assert difference.max() <= 2, name
            assert (difference > 0).mean() < 0.01, name
            compared += 1
    assert compared >= 10
