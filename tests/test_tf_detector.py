"""Our TensorFlow YuNet against OpenCV's: the same faces, boxes and landmarks within 0.5 px
on real photos, NMS equal to ``cv2.dnn.NMSBoxes``, the weights equal to a fresh conversion,
and the working resolution of video frames."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceapp.errors import ModelError
from faceapp.vision.detection import DetectorConfig, YuNetDetector, work_scale, yunet_path
from faceapp.vision.tf_detector import TfYuNetDetector, padded_size, weights_path
from faceapp.vision.yunet_decode import nms

ALL = DetectorConfig(min_face_size=0)  # every face the network reports, as cv2.FaceDetectorYN does


@pytest.fixture(scope="module")
def opencv():
    return YuNetDetector(yunet_path(), ALL)


@pytest.fixture(scope="module", params=["litert", "tensorflow"])
def ours(request):
    return TfYuNetDetector(weights_path(), ALL, device="cpu", runtime=request.param)


def _photos(fixtures_dir: Path, lfw_dir: Path) -> list[np.ndarray]:
    """The fixture photos (portraits, groups, a face cut by the border) and 40 LFW images,
    some of them resized to odd sizes (so the padding to multiples of 32 varies)."""
    images = [cv2.imread(str(p)) for p in sorted(fixtures_dir.rglob("*.jpg"))]
    lfw = sorted(lfw_dir.rglob("*.jpg"))
    for n, path in enumerate(lfw[:: max(1, len(lfw) // 40)][:40]):
        image = cv2.imread(str(path))
        if n % 3 == 1:
            image = cv2.resize(image, (333 + n, 201 + 2 * n))
        elif n % 3 == 2:
            image = cv2.resize(image, (610, 610))
        images.append(image)
    return images


def _assert_same(theirs: np.ndarray, mine: np.ndarray, what: str) -> None:
    assert mine.shape == theirs.shape, f"{what}: {len(theirs)} faces by OpenCV, {len(mine)} by ours"
    if len(theirs):
        order_t, order_m = np.lexsort(theirs[:, :2].T), np.lexsort(mine[:, :2].T)
        theirs, mine = theirs[order_t], mine[order_m]
        assert np.abs(mine[:, :14] - theirs[:, :14]).max() < 0.5, what
        assert np.abs(mine[:, 14] - theirs[:, 14]).max() < 1e-3, what


def test_same_faces_boxes_and_landmarks_as_opencv_on_real_photos(opencv, ours, fixtures_dir, lfw_dir):
    images = _photos(fixtures_dir, lfw_dir)
    faces = 0
    for n, image in enumerate(images):
        theirs, mine = opencv.raw(image), ours.raw(image)
        _assert_same(theirs, mine, f"image {n} ({image.shape[1]}x{image.shape[0]})")
        faces += len(theirs)
    assert faces >= len(images)  # the comparison is about faces, not empty results


def test_frames_of_changing_sizes_reuse_nothing_stale(opencv, ours, fixtures_dir):
    group = cv2.imread(str(fixtures_dir / "groups" / "obama_and_biden_2.jpg"))
    big = cv2.resize(group, (639, 479))
    small = cv2.resize(group, (620, 470))  # same padded size as ``big``: the padding must be cleared
    for image in (big, small, big[:, :300].copy(), small):
        _assert_same(opencv.raw(image), ours.raw(image), f"{image.shape}")


def test_blank_and_tiny_images_have_no_faces(ours):
    assert ours.detect(np.zeros((480, 640, 3), np.uint8)) == []
    assert ours.detect(np.full((31, 17, 3), 128, np.uint8)) == []


def test_detections_keep_the_detector_contract(ours, fixtures_dir):
    image = cv2.imread(str(fixtures_dir / "groups" / "obama_and_biden_2.jpg"))
    found = ours.detect(image)
    assert len(found) == 2 and found[0].score >= found[1].score
    assert all(d.landmarks.shape == (5, 2) and d.landmarks.dtype == np.float32 for d in found)
    with pytest.raises(ValueError):
        ours.detect(image.astype(np.float32))


def test_padding_is_opencvs():
    assert padded_size(360, 640) == (384, 640)
    assert padded_size(1, 1) == (32, 32)
    assert padded_size(720, 1280) == (736, 1280)


@pytest.mark.parametrize("seed", range(20))
def test_nms_equals_opencvs(seed):
    rng = np.random.default_rng(seed)
    count = int(rng.integers(2, 60))
    centres = rng.uniform(0, 200, (count, 2))
    sizes = rng.uniform(5, 80, (count, 2))
    boxes = np.concatenate([centres - sizes / 2, sizes], axis=1).astype(np.float32)
    boxes[: count // 4] = boxes[0] + rng.normal(0, 2, (count // 4, 4)).astype(np.float32)  # near duplicates
    scores = rng.uniform(0.5, 1.0, count).astype(np.float32)
    scores[1::7] = scores[0]  # ties keep their order
    threshold, overlap, top_k = 0.6, float(rng.uniform(0.2, 0.6)), int(rng.integers(5, 80))
    rects = [tuple(int(v) for v in b) for b in boxes]
    expected = np.asarray(cv2.dnn.NMSBoxes(rects, scores.tolist(), threshold, overlap, 1.0, top_k)).reshape(-1)
    assert nms(boxes, scores, threshold, overlap, top_k).tolist() == expected.tolist()


def test_damaged_weights_are_refused_in_one_line(tmp_path):
    damaged = tmp_path / "yunet_2023mar.weights.h5"
    data = bytearray(weights_path().read_bytes())
    data[5000] ^= 0xFF
    damaged.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        TfYuNetDetector(damaged, ALL, device="cpu")


@pytest.mark.skipif(importlib.util.find_spec("onnx") is None, reason="the onnx package (a development dependency) is not installed")
def test_shipped_weights_equal_a_fresh_conversion_of_the_onnx_file():
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from convert_yunet import convert

    from faceapp.vision.tf_detector import load_keras_yunet

    fresh, shipped = convert(yunet_path()), load_keras_yunet(weights_path())
    for a, b in zip(fresh.weights, shipped.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_work_scale_shrinks_large_video_frames_only():
    config = DetectorConfig()  # work_side 960
    assert work_scale(360, 640, config) == 1.0
    assert work_scale(540, 960, config) == 1.0
    assert work_scale(720, 1280, config) == pytest.approx(0.75)
    assert work_scale(720, 1280, DetectorConfig(work_side=640)) == pytest.approx(0.5)
    assert work_scale(1080, 1920, DetectorConfig(work_side=960)) == pytest.approx(0.5)
    assert work_scale(720, 1280, DetectorConfig(work_side=0)) == 1.0
    assert work_scale(4000, 3000, DetectorConfig(max_side=1000, work_side=0)) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="detection side"):
        DetectorConfig(work_side=10).validate()


@pytest.mark.parametrize("side", [960, 640])
def test_a_720p_video_frame_is_detected_smaller_with_the_same_faces(side, fixtures_dir, recognizer):
    photo = cv2.imread(str(fixtures_dir / "groups" / "obama_and_biden_2.jpg"))
    frame = np.zeros((720, 1280, 3), np.uint8)
    scale = min(1.0, 700 / photo.shape[0], 1260 / photo.shape[1])
    photo = cv2.resize(photo, None, fx=scale, fy=scale)
    frame[: photo.shape[0], : photo.shape[1]] = photo
    detector = TfYuNetDetector(weights_path(), DetectorConfig(work_side=side), device="cpu")
    full, fast = detector.detect(frame), detector.detect(frame, video=True)
    assert len(full) == len(fast) == 2
    for a, b in zip(sorted(full, key=lambda d: d.box[0]), sorted(fast, key=lambda d: d.box[0]), strict=True):
        assert np.abs(np.subtract(a.box, b.box)).max() < 0.1 * a.box[2]
    # Aligned from the full-resolution frame with either set of landmarks: the same face to the embedding.
    embeddings = [recognizer.embed(recognizer.align(frame, sorted(found, key=lambda d: d.box[0]))) for found in (full, fast)]
    assert (embeddings[0] * embeddings[1]).sum(axis=1).min() > 0.9
