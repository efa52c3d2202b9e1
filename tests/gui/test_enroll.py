"""Enrolling from the camera (driven like a user would) and from photos."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from faceapp.media.imageio import read_image
from faceapp.recognition.enrollment import NO_FACE, SEVERAL_FACES, evaluate_frame

WAIT_MS = 20_000


def open_enroll(qtbot, window, name: str):
    dialog = window.open_enroll_dialog()
    qtbot.keyClicks(dialog.name_edit, name)
    qtbot.mouseClick(dialog.capture_button, Qt.MouseButton.LeftButton)
    return dialog


def test_quality_gate_verdicts(recognizer, biden_frames, blurred_frames, tiny_frames, group_frame):
    def verdict(frame):
        return evaluate_frame(recognizer.process(frame))

    assert verdict(biden_frames[3]).ok
    assert "hold still" in verdict(blurred_frames[2]).problem
    assert "move closer" in verdict(tiny_frames[2]).problem
    empty = blurred_frames[0] * 0 + 96
    assert verdict(empty).problem == NO_FACE
    assert verdict(group_frame).problem == SEVERAL_FACES


def test_enroll_from_the_camera_adds_a_recognised_person(qtbot, make_window, gallery_with, biden_frames, camera_factory, fixtures_dir):
    gallery = gallery_with("obama")
    window = make_window(opener=camera_factory(biden_frames).open, enroll_interval_s=0.05)
    window.open_source_text("0")
    dialog = open_enroll(qtbot, window, "Joe Biden")
    assert not dialog.save_button.isEnabled()
    qtbot.waitUntil(lambda: dialog.complete, timeout=WAIT_MS)
    assert len(dialog.taken) == 5 and "All 5 samples taken" in dialog.status.text()

    # Retake the second sample.
    first_two = list(dialog.samples[:2])
    dialog.thumbnails.item(1).setSelected(True)
    qtbot.mouseClick(dialog.retake_button, Qt.MouseButton.LeftButton)
    assert dialog.samples[1] is None and dialog.capturing
    qtbot.waitUntil(lambda: dialog.complete, timeout=WAIT_MS)
    assert dialog.samples[0] is first_two[0] and dialog.samples[1] is not first_two[1]

    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert dialog.result() == dialog.DialogCode.Accepted
    person = gallery.person("Joe Biden")
    assert person.template_count == 5
    assert all(t.thumbnail for t in gallery.templates("Joe Biden"))
    # The new person is recognised: in the live window at once, and in a photo.
    qtbot.waitUntil(lambda: window.view.overlay_names() == ["Joe Biden"], timeout=WAIT_MS)
    assert not window.controller._recognition.worker.enrollment  # judging stops with the dialog
    window.close()  # the detector belongs to one thread at a time: stop the window's first
    result = window.recognizer.process(read_image(fixtures_dir / "biden" / "biden_1.jpg"))
    assert [face.match.name for face in result.faces] == ["Joe Biden"]


@pytest.mark.parametrize("kind, message", [("blurred", "hold still"), ("tiny", "move closer")])
def test_the_quality_gate_rejects_blurred_and_tiny_faces(qtbot, make_window, camera_factory, blurred_frames, tiny_frames, kind, message):
    frames = blurred_frames if kind == "blurred" else tiny_frames
    window = make_window(opener=camera_factory(frames).open, enroll_interval_s=0.0)
    window.open_source_text("0")
    dialog = open_enroll(qtbot, window, "Someone")
    seen = []
    window.controller.packetReady.connect(lambda packet: seen.append(packet))
    qtbot.waitUntil(lambda: message in dialog.status.text() and len(seen) >= 5, timeout=WAIT_MS)
    assert dialog.taken == []
    assert dialog.status.text().startswith("Sample 1 of 5:")
    dialog.reject()


def test_cancel_leaves_the_gallery_untouched(qtbot, make_window, gallery_with, biden_frames, camera_factory):
    gallery = gallery_with("obama")
    revision = gallery.revision()
    window = make_window(opener=camera_factory(biden_frames).open, enroll_interval_s=0.0)
    window.open_source_text("0")
    dialog = open_enroll(qtbot, window, "Joe")
    qtbot.waitUntil(lambda: len(dialog.taken) >= 2, timeout=WAIT_MS)
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert dialog.result() == dialog.DialogCode.Rejected
    assert gallery.revision() == revision
    assert [p.name for p in gallery.people()] == ["obama"]


def test_a_name_is_needed_before_capturing(qtbot, make_window, biden_frames, camera_factory):
    window = make_window(opener=camera_factory(biden_frames).open)
    window.open_source_text("0")
    dialog = open_enroll(qtbot, window, "   ")
    assert not dialog.capturing and "empty" in dialog.status.text()
    dialog.reject()


@pytest.mark.parametrize("answer, expected", [("add", {"biden": 6, "obama": 2}), ("create", {"biden": 1, "Joe": 5, "obama": 2}), ("cancel", None)])
def test_a_face_already_enrolled_asks_before_saving(qtbot, make_window, gallery_with, biden_frames, camera_factory, asker_factory, answer, expected):
    gallery = gallery_with("obama", "biden")
    choices = {"add": "Add to 'biden'", "create": "Create 'Joe' anyway", "cancel": "Cancel"}
    asker = asker_factory(choose=[choices[answer]])
    window = make_window(opener=camera_factory(biden_frames).open, asker=asker, enroll_interval_s=0.0)
    window.open_source_text("0")
    dialog = open_enroll(qtbot, window, "Joe")
    qtbot.waitUntil(lambda: dialog.complete, timeout=WAIT_MS)
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert "matches 'biden'" in asker.asked[0][1]
    if expected is None:
        assert dialog.isVisible() and "Not saved" in dialog.status.text()
        assert {p.name: p.template_count for p in gallery.people()} == {"biden": 1, "obama": 2}
        dialog.reject()
    else:
        assert {p.name: p.template_count for p in gallery.people()} == expected


def test_add_from_photos_for_a_new_and_an_existing_person(qtbot, make_window, gallery_with, fixtures_dir, asker_factory):
    gallery = gallery_with("obama")
    photos = [str(fixtures_dir / "biden" / name) for name in ("biden_1.jpg", "biden_2.jpg")]
    asker = asker_factory(open_files=[photos, [str(fixtures_dir / "obama" / "obama_1.jpg")]], choose=["Add to 'obama'"])
    window = make_window(opener=lambda spec: [], asker=asker)

    dialog = window.open_photos_dialog()
    dialog.name_combo.setCurrentText("Joe")
    qtbot.mouseClick(dialog.choose_button, Qt.MouseButton.LeftButton)
    assert dialog.paths() == photos
    qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.result() == dialog.DialogCode.Accepted, timeout=WAIT_MS)
    assert gallery.person("Joe").template_count == 2

    dialog = window.open_photos_dialog("obama")
    qtbot.mouseClick(dialog.choose_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.result() == dialog.DialogCode.Accepted, timeout=WAIT_MS)
    assert gallery.person("obama").template_count == 3
    assert "already in the gallery" in asker.asked[-1][1]


def test_add_from_photos_refuses_a_group_photo_and_writes_nothing(qtbot, make_window, gallery_with, fixtures_dir, asker_factory):
    gallery = gallery_with("obama")
    revision = gallery.revision()
    photos = [str(fixtures_dir / "biden" / "biden_1.jpg"), str(fixtures_dir / "groups" / "obama_and_biden_1.jpg")]
    window = make_window(opener=lambda spec: [], asker=asker_factory(open_files=[photos]))
    dialog = window.open_photos_dialog("Joe")
    qtbot.mouseClick(dialog.choose_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "faces found" in dialog.status.text(), timeout=WAIT_MS)
    assert "obama_and_biden_1.jpg" in dialog.status.text()
    assert dialog.add_button.isEnabled()
    assert gallery.revision() == revision
    dialog.reject()
