"""Passive anti-spoofing with MiniFASNetV2 + MiniFASNetV1SE: our Keras port (under LiteRT
and under plain TensorFlow) equals an independent numpy forward pass of the authors'
PyTorch weights within 1e-4 on the logits, the shipped weights are a fresh conversion,
the authors' demo scores come out again from their own boxes, and with our YuNet the
authors' samples come out as they say (T1 live; F1, F2 spoofs). The authors' files are
in ``../shared/models/minifasnet`` (``FACEAPP_MINIFASNET``); tests that need them skip
without them, and fail under CI=true."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import flip_byte, require_path

from faceapp.errors import ModelError
from faceapp.paths import DEFAULT_MODEL_DIR
from faceapp.types import Detection
from faceapp.vision.liveness import (
    DEFAULT_THRESHOLD,
    MODELS,
    LivenessChecker,
    crop_face,
    crop_region,
    softmax,
    weights_path,
)
from faceapp.vision.minifasnet import spec_from_shapes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from convert_minifasnet import convert, load_source, probe_inputs
from minifasnet_reference import reference_logits
from torch_legacy import load_state_dict

TOLERANCE = 1e-4
#: The authors' RetinaFace boxes (x, y, w, h), read off the rectangles their demo drew in
#: images/sample/image_*_result.jpg, and the label and score printed above them.
AUTHORS_DEMO = {
    "image_T1.jpg": ((106, 147, 207, 213), 1, 0.99),
    "image_F1.jpg": ((178, 136, 223, 225), 2, 0.73),
    "image_F2.jpg": ((120, 252, 252, 256), 2, 0.82),
}


def _detection(box) -> Detection:
    return Detection(tuple(float(v) for v in box), np.zeros((5, 2), np.float32), 0.99)


@pytest.fixture(scope="module")
def source_dir() -> Path:
    from faceapp.paths import minifasnet_dir

    return require_path(minifasnet_dir(), "the authors' MiniFASNet weights and samples (FACEAPP_MINIFASNET)")


@pytest.fixture(scope="module")
def states(source_dir) -> dict[str, dict[str, np.ndarray]]:
    return {model.name: load_source(model, source_dir) for model in MODELS}


@pytest.fixture(scope="module", params=["litert", "tensorflow"])
def checker(request) -> LivenessChecker:
    return LivenessChecker(device="cpu", runtime=request.param)


@pytest.fixture(scope="module")
def samples(source_dir) -> dict[str, tuple[np.ndarray, list[Detection]]]:
    """Each sample image (BGR) with the faces our YuNet finds in it."""
    from faceapp.vision.detection import DetectorConfig
    from faceapp.vision.tf_detector import TfYuNetDetector
    from faceapp.vision.tf_detector import weights_path as yunet_weights

    detector = TfYuNetDetector(yunet_weights(), DetectorConfig(), device="cpu")
    found = {}
    for path in sorted((source_dir / "samples").glob("image_*.jpg")):
        image = cv2.imread(str(path))
        found[path.name] = (image, detector.detect(image))
    assert set(found) == set(AUTHORS_DEMO)
    return found


# --------------------------------------------------------------------------- the PyTorch files
def test_the_legacy_reader_reads_both_state_dicts(source_dir):
    for model in MODELS:
        state = load_state_dict(source_dir / model.source_file)
        assert all(key.startswith("module.") for key in state)
        floats = [v for k, v in state.items() if v.dtype == np.float32]
        assert all(np.isfinite(v).all() for v in floats)
        assert 0.42e6 < sum(v.size for k, v in state.items()
                            if v.dtype == np.float32 and "running" not in k) < 0.44e6
        assert state["module.conv1.conv.weight"].shape == (32, 3, 3, 3)
        assert all(v.dtype == np.int64 for k, v in state.items() if k.endswith("num_batches_tracked"))


def test_the_legacy_reader_refuses_code_and_foreign_files(tmp_path):
    class Hostile:
        def __reduce__(self):
            return (print, ("pwned",))

    hostile = tmp_path / "hostile.pth"
    with open(hostile, "wb") as handle:
        for value in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}, Hostile()):
            pickle.dump(value, handle, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        load_state_dict(hostile)
    other = tmp_path / "other.pth"
    other.write_bytes(pickle.dumps(12345))
    with pytest.raises(pickle.UnpicklingError, match="magic"):
        load_state_dict(other)


def test_the_architectures_widths_are_the_state_dicts(states):
    for model in MODELS:
        shapes = {key: value.shape for key, value in states[model.name].items()}
        assert spec_from_shapes(model.name, shapes) == model.spec


def test_the_shipped_weights_equal_a_fresh_conversion(states):
    from faceapp.vision.liveness import load_keras_minifasnet

    for model in MODELS:
        fresh, shipped = convert(model, states[model.name]), load_keras_minifasnet(model, weights_path(model))
        for a, b in zip(fresh.weights, shipped.weights, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# --------------------------------------------------------------------------- equivalence
def test_our_networks_equal_the_numpy_reference(checker, states, samples):
    """Random and blurred-noise inputs, and the real crops of every face in the samples
    (both scales), through LiteRT and plain TensorFlow: logits within 1e-4."""
    crops = [crop_face(image, d.box, m.scale) for image, found in samples.values() for d in found for m in MODELS]
    crops += [crop_face(samples[name][0], box, m.scale) for name, (box, _, _) in AUTHORS_DEMO.items() for m in MODELS]
    inputs = np.concatenate([probe_inputs(8, seed=1), np.stack(crops).astype(np.float32)])
    for model in MODELS:
        ours = checker.logits(model.name, inputs)
        theirs = reference_logits(states[model.name], inputs.transpose(0, 3, 1, 2))
        assert ours.shape == (len(inputs), 3) and ours.dtype == np.float32
        assert np.abs(theirs).max() > 1.0  # logits, not a degenerate output
        difference = float(np.abs(ours - theirs).max())
        assert difference < TOLERANCE, f"{model.name} on {checker.backend}: {difference:.2e}"


def test_the_authors_demo_scores_come_out_of_their_boxes(checker, samples):
    """The authors' demo (their RetinaFace boxes, both networks' softmax summed, argmax,
    score = summed probability / 2) printed T1 real 0.99, F1 fake 0.73, F2 fake 0.82."""
    for name, (box, label, printed) in AUTHORS_DEMO.items():
        image = samples[name][0]
        result = checker.check(image, _detection(box))
        summed = sum(result.per_model.values())
        assert int(np.argmax(summed)) == label, name
        assert round(float(summed[label]) / 2, 2) == printed, f"{name}: {summed / 2}"
        assert result.is_live == (label == 1)


def test_the_samples_come_out_as_the_authors_say_with_our_detector(checker, samples):
    scores = {}
    for name, (image, found) in samples.items():
        assert len(found) == 1, name
        result = checker.check(image, found[0])
        scores[name] = result.score
        assert result.is_live == (name == "image_T1.jpg"), f"{name}: score {result.score:.3f}"
        assert set(result.per_model) == {m.name for m in MODELS}
    print("liveness scores with YuNet boxes:", {k: round(v, 3) for k, v in scores.items()})
    assert scores["image_T1.jpg"] > 0.9 and max(scores["image_F1.jpg"], scores["image_F2.jpg"]) < 0.4


# --------------------------------------------------------------------------- the crop and the API
def test_the_crop_is_the_box_scaled_about_its_centre_and_kept_inside():
    assert crop_region((640, 480), (300, 200, 40, 40), 2.0) == (280, 180, 360, 260)
    # Too close to the left/top: shifted right/down, same size.
    assert crop_region((640, 480), (0, 10, 40, 40), 2.0) == (0, 0, 80, 80)
    # Too close to the right/bottom: shifted left/up to end at the last pixel.
    assert crop_region((640, 480), (620, 460, 20, 20), 3.0) == (579, 419, 639, 479)
    # A scale the image cannot hold is capped to (side - 1) / box side.
    left, top, right, bottom = crop_region((480, 640), (100, 150, 200, 200), 4.0)
    assert (left, right) == (0, 479) and bottom - top == 479
    for bad in ((0, 0, 0, 10), (0, 0, 10, -1)):
        with pytest.raises(ValueError):
            crop_region((640, 480), bad, 2.7)
    image = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    crop = crop_face(image, (300, 200, 40, 40), 2.0)
    assert crop.shape == (80, 80, 3) and crop.dtype == np.uint8
    np.testing.assert_array_equal(crop_face(image, (300, 200, 40, 40), 1.975), image[180:260, 280:360])


def test_several_faces_are_checked_in_one_batch_like_one_by_one(checker):
    rng = np.random.default_rng(3)
    image = cv2.GaussianBlur(rng.integers(0, 255, (360, 480, 3), dtype=np.uint8), (0, 0), 2)
    faces = [_detection(b) for b in ((10, 10, 60, 70), (200, 100, 90, 110), (400, 300, 70, 50), (0, 0, 480, 360))]
    together = checker.check_many(image, faces)
    assert checker.check_many(image, []) == []
    for face, result in zip(faces, together, strict=True):
        alone = checker.check(image, face)
        assert abs(alone.score - result.score) < 1e-5 and 0.0 <= result.score <= 1.0
        assert result.is_live == (result.score >= DEFAULT_THRESHOLD)
        assert all(p.shape == (3,) and abs(float(p.sum()) - 1) < 1e-5 for p in result.per_model.values())
    assert checker.logits(MODELS[0].name, np.zeros((0, 80, 80, 3), np.uint8)).shape == (0, 3)
    with pytest.raises(ValueError):
        checker.logits(MODELS[0].name, np.zeros((1, 112, 112, 3), np.uint8))


def test_softmax_and_the_threshold():
    probabilities = softmax(np.array([[0.0, 1000.0, 0.0], [1.0, 1.0, 1.0]]))
    np.testing.assert_allclose(probabilities, [[0, 1, 0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-6)
    with pytest.raises(ValueError):
        LivenessChecker(threshold=1.5, device="cpu")
    with pytest.raises(ModelError):
        LivenessChecker(runtime="onnx", device="cpu")


def test_damaged_weights_are_refused_and_absent_ones_come_from_the_shipped_folder(tmp_path):
    model = MODELS[1]
    damaged = tmp_path / model.weights_file
    damaged.write_bytes((DEFAULT_MODEL_DIR / model.weights_file).read_bytes())
    flip_byte(damaged)
    with pytest.raises(ModelError, match="sha256"):
        weights_path(model, tmp_path)
    assert weights_path(model, tmp_path / "empty") == DEFAULT_MODEL_DIR / model.weights_file
