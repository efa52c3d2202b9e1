"""YuNet detection: configuration, input checks, and faces found in the fixture photos."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp.errors import ModelError
from faceapp.vision.detection import DetectorConfig, YuNetDetector, yunet_path


@pytest.fixture(scope="module")
def detector():
    return YuNetDetector(yunet_path())


@pytest.mark.parametrize(
    "options",
    [
        {"score_threshold": 0.0},
        {"score_threshold": 1.0},
        {"score_threshold": -0.5},
        {"nms_threshold": 0.0},
        {"nms_threshold": 1.5},
        {"min_face_size": -1},
    ],
)
def test_config_validation_rejects(options):
    config = DetectorConfig(**options)
    with pytest.raises(ValueError):
        config.validate()
    with pytest.raises(ValueError):
        YuNetDetector(yunet_path(), config)


def test_default_config_is_valid():
    DetectorConfig().validate()
    DetectorConfig(score_threshold=0.5, nms_threshold=0.4, min_face_size=0).validate()


def test_blank_images_have_no_face(detector):
    assert detector.detect(np.zeros((240, 320, 3), np.uint8)) == []
    assert detector.detect(np.full((480, 640, 3), 200, np.uint8)) == []


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((100, 100), np.uint8),  # grey
        np.zeros((100, 100, 4), np.uint8),  # BGRA
        np.zeros((100, 100, 1), np.uint8),
        np.zeros((100, 100, 3), np.float32),
        np.zeros((100, 100, 3), np.uint16),
    ],
    ids=["grey", "bgra", "one-channel", "float32", "uint16"],
)
def test_rejects_images_that_are_not_bgr_uint8(detector, image):
    with pytest.raises(ValueError, match="BGR uint8"):
        detector.detect(image)


def test_unloadable_model_file_is_a_model_error(tmp_path):
    garbage = tmp_path / "yunet.onnx"
    garbage.write_bytes(b"not an onnx file" * 10)
    with pytest.raises(ModelError, match="YuNet"):
        YuNetDetector(garbage)
    with pytest.raises(ModelError):
        YuNetDetector(tmp_path / "missing.onnx")


def test_single_portrait(fixture_faces):
    image, detections = fixture_faces["obama/obama_1.jpg"]
    assert len(detections) == 1
    face = detections[0]
    x, y, w, h = face.box
    height, width = image.shape[:2]
    assert 0 <= x and 0 <= y and x + w <= width and y + h <= height
    assert 0.8 <= face.score <= 1.0
    assert face.landmarks.shape == (5, 2) and face.landmarks.dtype == np.float32
    right_eye, left_eye, nose, right_mouth, left_mouth = face.landmarks
    # The person's right eye is on the image's left; eyes above nose above mouth.
    assert right_eye[0] < left_eye[0] and right_mouth[0] < left_mouth[0]
    assert max(right_eye[1], left_eye[1]) < nose[1] < min(right_mouth[1], left_mouth[1])
    # Every landmark lies inside the box.
    assert np.all((face.landmarks >= [x, y]) & (face.landmarks <= [x + w, y + h]))


@pytest.mark.parametrize(
    "photo, count",
    [
        ("obama/obama_1.jpg", 1), ("obama/obama_2.jpg", 1), ("obama/obama_3.jpg", 1), ("obama/obama_4.jpg", 1),
        ("biden/biden_1.jpg", 1), ("biden/biden_2.jpg", 1),
        ("groups/obama_and_biden_2.jpg", 2),
        ("groups/obama_partial_face.jpg", 1),
    ],
)
def test_face_counts(fixture_faces, photo, count):
    assert len(fixture_faces[photo][1]) == count


def test_group_photo_sorted_by_score(fixture_faces):
    detections = fixture_faces["groups/obama_and_biden_1.jpg"][1]
    assert len(detections) >= 2  # the two men (and a child's face, lower right)
    scores = [d.score for d in detections]
    assert scores == sorted(scores, reverse=True)


def test_partial_face_box_may_cross_the_border(fixture_faces):
    image, (face,) = fixture_faces["groups/obama_partial_face.jpg"]
    x, y, w, h = face.box
    assert x < 0 or y < 0 or x + w > image.shape[1] or y + h > image.shape[0]


def test_min_face_size_filters_small_faces(fixture_faces):
    image, detections = fixture_faces["obama/obama_1.jpg"]
    side = min(detections[0].box[2:])
    bigger = YuNetDetector(yunet_path(), DetectorConfig(min_face_size=int(side) + 1))
    assert bigger.detect(image) == []
    smaller = YuNetDetector(yunet_path(), DetectorConfig(min_face_size=int(side) - 1))
    assert len(smaller.detect(image)) == 1


def test_input_size_follows_each_frame(detector, fixture_faces):
    """One detector on frames of different sizes: boxes are in each frame's own pixels."""
    import cv2

    image, (reference,) = fixture_faces["obama/obama_1.jpg"]
    half = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
    for frame, factor in ((image, 1.0), (half, 0.5), (image, 1.0)):
        (face,) = detector.detect(frame)
        np.testing.assert_allclose(face.box, np.array(reference.box) * factor, atol=12 * factor + 3)
