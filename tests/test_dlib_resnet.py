"""dlib's face recognition ResNet in our stack: the file reader reads Davis King's
``dlib_face_recognition_resnet_model_v1.dat`` as dlib's ``anet_type``, the shipped
weights are a fresh conversion of it, our Keras network (under TensorFlow and under
LiteRT) gives dlib's own descriptors within 1e-4 on chips of real faces, and our numpy
chip cutter gives ``dlib.get_face_chip``'s chips.

dlib itself (``pip install dlib-bin``) and the model files (``pip install
face_recognition_models``) are development dependencies: the app never imports them.
Tests that need them skip without them, and fail under CI=true (CI installs them), as
tests of the shared photos do."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import flip_byte

from faceapp.embedding.dlib_resnet import (
    EMBEDDING_DIM,
    WEIGHTS_FILE,
    load_dlib_resnet,
    to_model_input,
    weights_path,
)
from faceapp.errors import ModelError
from faceapp.paths import DEFAULT_MODEL_DIR
from faceapp.vision.dlib_chip import chip_details, extract_chip, face_chip, pyramid_down

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from convert_dlib_resnet import LANDMARKS_NAME, SOURCE_NAME, convert, load_source, packaged_model, probe_chips
from dlib_dnn import DlibFormatError, DlibStream, read_network

TOLERANCE = 1e-4  # largest |our descriptor - dlib's| (descriptors of norm ~1.4)
LFW_IMAGES = 20
INSTALL = "pip install dlib-bin face_recognition_models"


def _unavailable(message: str) -> None:
    """Skip with ``message``, or fail under CI=true (which installs the dependencies)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (required in CI)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def model_files() -> dict[str, Path]:
    """The .dat files of the ``face_recognition_models`` package (Davis King's, unchanged)."""
    files = {"resnet": packaged_model(SOURCE_NAME), "landmarks": packaged_model(LANDMARKS_NAME)}
    if None in files.values():
        _unavailable(f"the development dependency face_recognition_models is not installed; {INSTALL}")
    return files


@pytest.fixture(scope="module")
def dlib(model_files):
    try:
        return importlib.import_module("dlib")
    except ImportError as error:
        _unavailable(f"the development dependency dlib cannot be imported ({error}); {INSTALL}")


@pytest.fixture(scope="module")
def network(model_files):
    return load_source(model_files["resnet"])


@pytest.fixture(scope="module")
def faces(dlib, model_files, fixtures_dir, lfw_dir) -> list[dict]:
    """Every face dlib's HOG detector finds in the fixture photos and in the first
    ``LFW_IMAGES`` LFW images where it finds one: the RGB image, the 5-point shape, its
    landmarks as a (5, 2) array and ``dlib.get_face_chip``'s chip (RGB uint8)."""
    import cv2

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(model_files["landmarks"]))
    photos = sorted(fixtures_dir.rglob("*.jpg"))
    lfw = iter(sorted((lfw_dir / "images").glob("*.jpg")))
    found: list[dict] = []

    def add_faces(path: Path) -> int:
        rgb = np.ascontiguousarray(cv2.imread(str(path))[..., ::-1])
        boxes = detector(rgb, 0 if max(rgb.shape[:2]) > 600 else 1)  # LFW's 150x150: upsample once
        for box in boxes:
            shape = predictor(rgb, box)
            landmarks = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], np.float64)
            found.append({"name": path.name, "image": rgb, "shape": shape, "landmarks": landmarks,
                          "chip": np.asarray(dlib.get_face_chip(rgb, shape, 150, 0.25))})
        return len(boxes)

    assert sum(add_faces(path) for path in photos) >= len(photos) - 1
    lfw_used = 0
    while lfw_used < LFW_IMAGES:
        lfw_used += add_faces(next(lfw)) > 0
    return found


@pytest.fixture(scope="module")
def keras_model():
    return load_dlib_resnet()


def _litert_runner(model, directory: Path):
    from faceapp.accel.litert import Runner, cached_interpreter

    runner = Runner(cached_interpreter(directory / "dlib_resnet_v1.tflite", lambda: model, "dlib ResNet"))
    return lambda batch: runner(batch)[0]


# --------------------------------------------------------------------------- the file
def test_the_reader_reads_the_whole_file_as_dlibs_anet_type(network):
    kinds = [layer.kind for layer in network.layers]
    assert kinds.count("con") == 29 and kinds.count("affine") == 29 and kinds.count("fc") == 1
    assert network.input_size == (150, 150)
    assert network.loss == pytest.approx({"margin": 0.04, "distance_threshold": 0.6})
    parameters = sum(v.size for layer in network.layers for v in layer.values.values())
    assert parameters == 5_614_592  # 29 convolutions with biases, 29 affine layers, 256 x 128
    first = network.of_kind("con")[0]
    assert first.values["filters"].shape == (32, 3, 7, 7) and first.spec["padding"] == 0
    assert all(np.isfinite(v).all() for layer in network.layers for v in layer.values.values())


def test_the_reader_refuses_a_cut_or_padded_file(model_files):
    data = model_files["resnet"].read_bytes()
    with pytest.raises(DlibFormatError, match="ends"):
        read_network(data[: len(data) // 2])
    with pytest.raises(DlibFormatError, match="left after"):
        read_network(data + b"\x00")
    with pytest.raises(DlibFormatError, match="loss_metric_9"):
        read_network(data.replace(b"loss_metric_2", b"loss_metric_9", 1))


def test_dlibs_integer_float_and_tensor_encodings():
    # 0 / 300 / -5 as ints, 0.75 as (mantissa 3, exponent -2), a 1x2x1x1 tensor, True.
    data = (b"\x01\x00" + b"\x02\x2c\x01" + b"\x81\x05" + b"\x01\x03\x81\x02"
            + b"\x01\x02" + b"\x01\x01\x01\x02\x01\x01\x01\x01" + np.array([1.5, -2], "<f4").tobytes() + b"1")
    stream = DlibStream(data)
    assert (stream.integer(), stream.integer(), stream.integer()) == (0, 300, -5)
    assert stream.real() == 0.75
    np.testing.assert_array_equal(stream.tensor(), np.array([1.5, -2], np.float32).reshape(1, 2, 1, 1))
    assert stream.boolean() is True and stream.offset == len(data)
    with pytest.raises(DlibFormatError):
        DlibStream(b"\x81\x05").unsigned()


def test_the_shipped_weights_equal_a_fresh_conversion(network, keras_model):
    fresh = convert(network)
    for ours, shipped in zip(fresh.weights, keras_model.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(shipped))


def test_damaged_weights_are_refused_and_absent_ones_come_from_the_shipped_folder(tmp_path):
    damaged = tmp_path / WEIGHTS_FILE
    damaged.write_bytes((DEFAULT_MODEL_DIR / WEIGHTS_FILE).read_bytes())
    flip_byte(damaged)
    with pytest.raises(ModelError, match="sha256"):
        weights_path(tmp_path)
    assert weights_path(tmp_path / "empty") == DEFAULT_MODEL_DIR / WEIGHTS_FILE


# --------------------------------------------------------------------------- equivalence
@pytest.mark.parametrize("runtime", ["tensorflow", "litert"])
def test_our_network_gives_dlibs_descriptors(runtime, dlib, model_files, faces, keras_model, tmp_path):
    """Real chips (fixture photos, LFW) and noise chips: our descriptors within 1e-4 of
    ``compute_face_descriptor(chip)`` (dlib's overload for an aligned 150x150 RGB chip)."""
    chips = np.concatenate([np.stack([face["chip"] for face in faces]), probe_chips(4, seed=2)])
    net = dlib.face_recognition_model_v1(str(model_files["resnet"]))
    theirs = np.array([np.array(net.compute_face_descriptor(np.ascontiguousarray(chip))) for chip in chips])
    inputs = to_model_input(chips[..., ::-1])  # the app's BGR chips -> RGB float32
    np.testing.assert_array_equal(inputs, chips.astype(np.float32))
    if runtime == "tensorflow":
        ours = np.asarray(keras_model(inputs, training=False))
    else:
        ours = _litert_runner(keras_model, tmp_path)(inputs)
    assert ours.shape == (len(chips), EMBEDDING_DIM) and ours.dtype == np.float32
    assert 0.2 < float(np.linalg.norm(theirs, axis=1).min())  # descriptors, not a degenerate output
    difference = float(np.abs(ours - theirs).max())
    print(f"{runtime}: {len(chips)} chips, largest |ours - dlib| {difference:.2e}")
    assert difference < TOLERANCE, f"{runtime}: {difference:.2e}"


# --------------------------------------------------------------------------- the chips
def test_our_chips_are_dlibs(dlib, faces):
    """Measured on the 9 fixture photos' 12 faces and 20 LFW faces (both with and without
    the image pyramid, and a face cut by the border): every chip pixel equal (mean
    |difference| 0). A flipped truncation of a value rounded differently (dlib's
    ``pinv`` vs our solve) would change one value by 1: allowed, but rarely."""
    differences = []
    for face in faces:
        details = chip_details(face["landmarks"])
        theirs = dlib.get_face_chip_details(face["shape"], 150, 0.25)
        rect = theirs.rect
        expected = (rect.left(), rect.top(), rect.right(), rect.bottom())
        np.testing.assert_allclose(details.rect, expected, rtol=0, atol=1e-9)
        assert abs(details.angle - theirs.angle) < 1e-12 and (details.rows, details.cols) == (150, 150)
        ours = extract_chip(face["image"], details)
        difference = np.abs(ours.astype(np.int16) - face["chip"].astype(np.int16))
        assert int(difference.max()) <= 1, face["name"]
        differences.append(float(difference.mean()))
        bgr = face_chip(np.ascontiguousarray(face["image"][..., ::-1]), face["landmarks"])
        np.testing.assert_array_equal(bgr, ours[..., ::-1])
    print(f"chips: {len(faces)} faces, mean |ours - dlib| {np.mean(differences):.2e}, worst {max(differences):.2e}")
    assert max(differences) < 1e-3


def test_pyramid_down_and_the_edges_of_the_image():
    flat = np.full((21, 30, 3), 200, np.uint8)
    assert pyramid_down(flat).shape == (9, 13, 3) and (pyramid_down(flat) == 200).all()
    assert pyramid_down(flat[:8]).shape == (0, 0, 3)
    # A chip far outside the image is black; one at its edge is black where it leaves it.
    image = np.full((200, 200, 3), 90, np.uint8)
    centre = np.array([[120.0, 60], [105, 61], [70, 60], [85, 61], [95, 100]])
    assert not face_chip(image, centre + 10_000).any()
    edge = face_chip(image, centre - [100, 0])
    assert (edge[:, 0] == 0).all() and (edge[:, -1] >= 89).all()  # 89: a truncated 89.99..
    for bad in (np.zeros((4, 2)), np.full((5, 2), np.nan)):
        with pytest.raises(ValueError):
            chip_details(bad)
