"""The GPU's frame program (detection, alignment and embedding on the device, the frame
uploaded once), run on TensorFlow's CPU kernels, against the plain pipeline: the same
faces and names, crops within one grey level of ``cv2.warpAffine``, embeddings within 1e-3."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceapp.embedding.runtime import Embedder
from faceapp.recognition.frame_program import FrameProgram, inverse_affine
from faceapp.recognition.live import Tracking
from faceapp.recognition.pipeline import Recognizer, on_one_gpu
from faceapp.vision.alignment import align_face
from faceapp.vision.detection import DetectorConfig
from faceapp.vision.tf_detector import TfYuNetDetector, weights_path


@pytest.fixture(scope="module")
def program(sface_recognizer):
    detector = TfYuNetDetector(weights_path(), DetectorConfig(), device="cpu", runtime="tensorflow")
    embedder = Embedder(sface_recognizer.card, device="cpu", backend="tensorflow")
    return FrameProgram(detector, embedder)


def _frames(fixture_video, size=(1280, 720), count=24):
    capture = cv2.VideoCapture(str(fixture_video.path))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.resize(frame, size))
    capture.release()
    return frames


def test_a_cpu_pipeline_gets_no_frame_program(sface_recognizer):
    assert sface_recognizer.frame_program is None and not on_one_gpu(sface_recognizer.detector, sface_recognizer.embedder)


@pytest.fixture
def sface_gallery(sface_recognizer, fixtures_dir, tmp_path):
    """The fixture people enrolled with SFace alone (the frame program runs one network)."""
    from conftest import fixture_photos

    from faceapp.recognition.enrollment import samples_from_files
    from faceapp.storage.gallery import Gallery

    with Gallery(tmp_path / "sface.sqlite3") as gallery:
        for name in ("obama", "biden"):
            samples = samples_from_files(sface_recognizer, fixture_photos(fixtures_dir, name))
            gallery.add_person(name, [s.template(sface_recognizer.embedder.model_id) for s in samples])
        yield gallery


def test_the_same_faces_and_names_as_the_plain_pipeline(program, sface_recognizer, sface_gallery, fixture_video):
    plain = Recognizer(sface_recognizer.card, sface_recognizer.detector, sface_recognizer.embedder, gallery=sface_gallery)
    fused = Recognizer(sface_recognizer.card, program.detector, program.embedder, gallery=sface_gallery)
    fused.frame_program = program
    named = 0
    tracks = {"plain": Tracking(), "fused": Tracking()}
    for frame in _frames(fixture_video):
        for video in (False, True):
            a, b = plain.process(frame, video=video), fused.process(frame, video=video)
            assert len(a.faces) == len(b.faces)
            for x, y in zip(sorted(a.faces, key=lambda f: f.detection.box[0]), sorted(b.faces, key=lambda f: f.detection.box[0]),
                            strict=True):
                assert np.abs(np.subtract(x.detection.box, y.detection.box)).max() < 0.5
                assert x.match.name == y.match.name
                if video:  # shrunk by TensorFlow's area resize, not OpenCV's: landmarks a hair apart
                    assert float(x.embedding @ y.embedding) > 0.999
                else:
                    assert np.abs(x.embedding - y.embedding).max() < 1e-3
                named += x.match.name is not None
        a, b = plain.process(frame, tracks["plain"]), fused.process(frame, tracks["fused"])
        assert [f.match.name for f in a.faces] == [f.match.name for f in b.faces]
    assert named > 10


def test_crops_match_opencvs_warp_even_across_the_border(program, fixtures_dir):
    image = cv2.imread(str(fixtures_dir / "groups" / "obama_partial_face.jpg"))  # a face cut by the border
    found = program.detect(image)
    faces, embeddings = program.align_embed(image, found)
    assert faces and embeddings.shape == (len(faces), 128)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    for face in faces:
        reference = align_face(image, face.detection.landmarks).astype(int)
        assert np.abs(face.image.astype(int) - reference).max() <= 1


def test_another_frame_than_the_resident_one_is_uploaded_again(program, fixtures_dir):
    first = cv2.imread(str(fixtures_dir / "obama" / "obama_1.jpg"))
    second = cv2.imread(str(fixtures_dir / "biden" / "biden_1.jpg"))
    faces_second = program.detect(second)
    program.detect(first)  # now the first photo is on the device
    faces, _ = program.align_embed(second, faces_second)
    reference = align_face(second, faces_second[0].landmarks).astype(int)
    assert np.abs(faces[0].image.astype(int) - reference).max() <= 1
    assert program.align_embed(second, [])[1].shape == (0, 128)


def test_inverse_affine_undoes_the_forward_map():
    forward = np.array([[0.8, -0.3, 12.0], [0.3, 0.8, -4.0]])
    back = inverse_affine(forward)
    point = np.array([31.0, 17.0])
    mapped = forward[:, :2] @ point + forward[:, 2]
    np.testing.assert_allclose(back[:, :2] @ mapped + back[:, 2], point)
