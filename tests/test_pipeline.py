"""The whole pipeline on the real fixture faces: identities, group photos, the partial
face, enrollment rules, live gallery changes, and the fixture video frame by frame."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import GROUP_PHOTO_PEOPLE

from faceapp.errors import NoFaceError
from faceapp.recognition.enrollment import samples_from_images, single_face
from faceapp.storage.gallery import Gallery, NewTemplate
from faceapp.types import FrameResult


def embedding_of(recognizer, fixture_faces, photo: str) -> np.ndarray:
    image, detections = fixture_faces[photo]
    (face,) = recognizer.align(image, detections)
    return recognizer.embed([face])[0]


def contains(box, point) -> bool:
    x, y, w, h = box
    return x <= point[0] <= x + w and y <= point[1] <= y + h


# --------------------------------------------------------------------------- identities
def test_obama_photos_match_each_other_and_not_biden(recognizer, fixture_faces):
    obama = [embedding_of(recognizer, fixture_faces, f"obama/obama_{i}.jpg") for i in range(1, 5)]
    biden = [embedding_of(recognizer, fixture_faces, f"biden/biden_{i}.jpg") for i in range(1, 3)]
    threshold = recognizer.threshold
    for a, b in itertools.combinations(obama, 2):
        assert float(a @ b) >= threshold
    assert float(biden[0] @ biden[1]) >= threshold
    for a, b in itertools.product(obama, biden):
        assert float(a @ b) < threshold


@pytest.mark.parametrize("photo", ["groups/obama_and_biden_1.jpg", "groups/obama_and_biden_2.jpg"])
def test_group_photos_name_both_in_the_right_places(make_recognizer, enrolled_gallery, fixture_faces, photo):
    result = make_recognizer(enrolled_gallery).process(fixture_faces[photo][0])
    for name, point in GROUP_PHOTO_PEOPLE[photo]:
        (face,) = [f for f in result.faces if contains(f.detection.box, point)]
        assert face.match.name == name
    named = [f.match.name for f in result.faces if f.match.name]
    assert sorted(named) == ["biden", "obama"]  # anyone else (the child in photo 1) is unknown


def test_partial_face_is_recognised(make_recognizer, enrolled_gallery, fixture_faces):
    image, _ = fixture_faces["groups/obama_partial_face.jpg"]
    result = make_recognizer(enrolled_gallery).process(image)
    (face,) = result.faces
    assert face.detection.box[0] < 0  # the face is cut by the left border
    assert face.match.name == "obama"


def test_frame_result(make_recognizer, enrolled_gallery, fixture_faces):
    image, _ = fixture_faces["obama/obama_2.jpg"]
    live = make_recognizer(enrolled_gallery)
    result = live.process(image)
    assert isinstance(result, FrameResult)
    assert result.frame_size == (image.shape[1], image.shape[0])
    (face,) = result.faces
    assert face.embedding.shape == (256,) and abs(np.linalg.norm(face.embedding) - 1) < 1e-5  # the fused default
    assert face.match.name == face.match.best_name == "obama"
    assert 0 < face.match.margin <= face.match.similarity <= 1.0001
    data = face.to_json()
    assert data["name"] == "obama" and len(data["box"]) == 4
    # The aligned crop travels with the result (enrollment reuses it) and is what was embedded.
    assert face.aligned is not None and face.aligned.image.shape == (112, 112, 3) and face.aligned.detection == face.detection
    assert face.aligned.chip.shape == (150, 150, 3) and face.aligned.wide.shape == (224, 224, 3)
    np.testing.assert_allclose(live.embed([face.aligned])[0], face.embedding, atol=1e-5)


def test_empty_frame(make_recognizer, enrolled_gallery):
    result = make_recognizer(enrolled_gallery).process(np.full((480, 640, 3), 96, np.uint8))
    assert result.faces == () and result.frame_size == (640, 480)


def test_no_gallery_means_everyone_is_unknown(recognizer, fixture_faces):
    (face,) = recognizer.process(fixture_faces["obama/obama_1.jpg"][0]).faces
    assert face.match.name is None and face.match.best_name is None


# --------------------------------------------------------------------------- enrollment rules
def test_enrollment_takes_exactly_one_face(recognizer, fixture_faces):
    blank = np.zeros((300, 300, 3), np.uint8)
    with pytest.raises(NoFaceError, match="blank.png: no face found"):
        single_face(recognizer, blank, "blank.png")
    group, _ = fixture_faces["groups/obama_and_biden_2.jpg"]
    with pytest.raises(NoFaceError, match="2 faces found"):
        single_face(recognizer, group, "group.jpg")
    # One bad photo among good ones: nothing is returned at all.
    good, _ = fixture_faces["obama/obama_1.jpg"]
    with pytest.raises(NoFaceError, match="group.jpg"):
        samples_from_images(recognizer, [("good.jpg", good), ("group.jpg", group)])


def test_enrollment_samples(recognizer, fixture_faces):
    images = [(name, fixture_faces[name][0]) for name in ("obama/obama_1.jpg", "obama/obama_4.jpg")]
    samples = samples_from_images(recognizer, images)
    assert [s.source for s in samples] == ["obama/obama_1.jpg", "obama/obama_4.jpg"]
    template = samples[0].template(recognizer.embedder.model_id)
    assert template.model_id == "sface-dlib-fused-v1" and template.thumbnail[:3] == b"\xff\xd8\xff"
    import cv2

    assert cv2.imdecode(np.frombuffer(template.thumbnail, np.uint8), cv2.IMREAD_COLOR).shape == (224, 224, 3)  # the wide crop
    assert 0.0 <= template.quality <= 1.0
    np.testing.assert_array_equal(template.embedding, samples[0].embedding)


# --------------------------------------------------------------------------- live gallery
def test_gallery_changes_show_up_without_a_restart(make_recognizer, recognizer, fixture_faces, tmp_path):
    image, _ = fixture_faces["obama/obama_2.jpg"]
    path = tmp_path / "live.sqlite3"
    with Gallery(path) as viewer, Gallery(path) as editor:  # two connections, as two processes
        live = make_recognizer(viewer)
        assert live.process(image).faces[0].match.name is None
        samples = samples_from_images(recognizer, [("obama_1", fixture_faces["obama/obama_1.jpg"][0])])
        editor.add_person("obama", [s.template(recognizer.embedder.model_id) for s in samples])
        assert live.process(image).faces[0].match.name == "obama"
        editor.rename("obama", "barack")
        assert live.process(image).faces[0].match.name == "barack"
        editor.remove("barack")
        assert live.process(image).faces[0].match.name is None


def test_matcher_rebuilt_only_when_needed(make_recognizer, enrolled_gallery):
    live = make_recognizer(enrolled_gallery)
    first = live.matcher()
    assert live.matcher() is first
    assert first.present_names == ("biden", "obama")
    live.threshold = 0.99
    assert live.matcher() is not first and live.matcher().threshold == 0.99


def test_switching_galleries_rebuilds_the_matcher(make_recognizer, enrolled_gallery, tmp_path):
    """Two galleries can share a revision number; the matcher must follow the object."""
    template = enrolled_gallery.templates("biden")[0]
    with Gallery(tmp_path / "a.sqlite3") as first, Gallery(tmp_path / "b.sqlite3") as second:
        first.add_person("alice", [NewTemplate(template.embedding, template.model_id)])
        second.add_person("bob", [NewTemplate(template.embedding, template.model_id)])
        assert first.revision() == second.revision()  # made the same way
        live = make_recognizer(first)
        assert live.matcher().present_names == ("alice",)
        live.gallery = second
        assert live.matcher().present_names == ("bob",)
        live.gallery = None
        assert live.matcher().person_count == 0


def test_threshold_changes_apply(make_recognizer, enrolled_gallery, fixture_faces):
    image, _ = fixture_faces["groups/obama_and_biden_2.jpg"]
    live = make_recognizer(enrolled_gallery)
    assert {f.match.name for f in live.process(image).faces} == {"obama", "biden"}
    live.threshold = 0.999
    assert {f.match.name for f in live.process(image).faces} == {None}


# --------------------------------------------------------------------------- the fixture video
def test_fixture_video_frame_by_frame(make_recognizer, enrolled_gallery, fixture_video):
    """Every frame's set of names equals who is visible: panning, switches, empty frames.

    Observed: no miss in 78 frames. Allowed: 2 misses (frames at the ends of a pan,
    where a face is half out of the picture)."""
    from faceapp.media.sources import open_source

    live = make_recognizer(enrolled_gallery)
    misses = []
    with open_source(str(fixture_video.path)) as frames:
        for frame in frames:
            names = sorted(f.match.name or "unknown" for f in live.process(frame.image).faces)
            expected = sorted(fixture_video.people_per_frame[frame.index])
            if names != expected:
                misses.append((frame.index, names, expected))
    assert frame.index + 1 == fixture_video.frame_count
    assert len(misses) <= 2, misses
    # The ground truth covers all three cases.
    truth = fixture_video.people_per_frame
    assert () in truth and ("obama",) in truth and ("biden",) in truth and ("biden", "obama") in truth


def test_flip_fusion_gives_unit_embeddings_close_to_plain(recognizer, fixtures_dir):
    from faceapp.media.imageio import read_image

    image = read_image(fixtures_dir / "obama" / "obama_1.jpg")
    faces = recognizer.align(image, recognizer.detect(image))
    plain = recognizer.embed(faces)
    recognizer.flip = True
    try:
        fused = recognizer.embed(faces)
    finally:
        recognizer.flip = False
    assert np.allclose(np.linalg.norm(fused, axis=1), 1.0, atol=1e-5)
    assert 0.8 < float(plain[0] @ fused[0]) < 0.99999
