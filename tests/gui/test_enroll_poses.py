"""Pose-diverse webcam enrollment: the dialog asks for frontal, left and right views (real
LFW photos of one man, some mirrored, stand for the camera), says what to change, and
keeps one template of each pose; a retake asks again for the retaken slot's pose."""

from __future__ import annotations

import cv2
import pytest
from PySide6.QtCore import Qt

from faceapp.gui.images import qimage_from_bgr
from faceapp.gui.workers.recognition import FramePacket
from faceapp.recognition.enrollment import evaluate_frame

# (photo, mirrored): yaw measured by faceapp.vision.pose on these photos, in degrees.
FRONTAL = (("George_W_Bush_0007.jpg", False), ("George_W_Bush_0065.jpg", False))  # -1.8, -2.2
NOT_ENOUGH_LEFT = ("George_W_Bush_0247.jpg", True)  # +9.8
LEFT = (("George_W_Bush_0016.jpg", False), ("George_W_Bush_0150.jpg", True))  # +14.5, +18.2
TOO_FAR = ("George_W_Bush_0145.jpg", False)  # -52
RIGHT = (("George_W_Bush_0150.jpg", False), ("George_W_Bush_0016.jpg", True))  # -12.8, -22.4


def _frame(lfw_dir, name: str, mirrored: bool):
    image = cv2.imread(str(lfw_dir / "images" / name))
    return cv2.flip(image, 1) if mirrored else image


@pytest.fixture
def dialog(qtbot, make_window, settings):
    settings.enroll_poses = True
    window = make_window(enroll_interval_s=0.0)
    dialog = window.open_enroll_dialog()
    dialog._controller.blockSignals(True)  # the frames the tests give stand for the camera's
    dialog.count_spin.setValue(3)
    qtbot.keyClicks(dialog.name_edit, "George W Bush")
    qtbot.mouseClick(dialog.capture_button, Qt.MouseButton.LeftButton)
    yield dialog
    dialog._controller.blockSignals(False)


def _show(dialog, recognizer, lfw_dir, name: str, mirrored: bool, index: int = 0) -> None:
    image = _frame(lfw_dir, name, mirrored)
    result = recognizer.process(image)
    dialog.on_packet(FramePacket(image, qimage_from_bgr(image), result, index, 0, 10.0, 1.0, 0, evaluate_frame(result)))


def test_the_capture_asks_for_each_pose_and_keeps_one_of_each(qtbot, dialog, recognizer, lfw_dir, gallery):
    assert dialog.pose_capture is not None and dialog.prompt.isVisible()
    assert "look straight at the camera" in dialog.prompt.text() and dialog.status.text().startswith("Pose 1 of 3")
    for photo in FRONTAL:
        _show(dialog, recognizer, lfw_dir, *photo)
    assert "turn your head a little to your left" in dialog.prompt.text() and "⟸" in dialog.prompt.text()
    _show(dialog, recognizer, lfw_dir, *NOT_ENOUGH_LEFT)
    assert "turn a little more to your left" in dialog.status.text() and "view 0 of 2" in dialog.status.text()
    for photo in LEFT:
        _show(dialog, recognizer, lfw_dir, *photo)
    assert "to your right" in dialog.prompt.text() and dialog.status.text().startswith("Pose 3 of 3")
    _show(dialog, recognizer, lfw_dir, *TOO_FAR)
    assert "turn to the camera" in dialog.status.text() or "not so far" in dialog.status.text()
    assert not dialog.complete
    for photo in RIGHT:
        _show(dialog, recognizer, lfw_dir, *photo)
    assert dialog.complete and dialog.pose_capture is None and not dialog.capturing and not dialog.prompt.isVisible()
    assert sorted(dialog.sample_poses) == ["frontal", "left", "right"]
    assert "All 3 samples taken" in dialog.status.text()
    assert "turn your head a little to your" in dialog.thumbnails.item(dialog.sample_poses.index("left")).toolTip()

    # Retaking the left view asks for the left pose only, and keeps the other two.
    row = dialog.sample_poses.index("left")
    others = [s for i, s in enumerate(dialog.samples) if i != row]
    dialog.thumbnails.item(row).setSelected(True)
    qtbot.mouseClick(dialog.retake_button, Qt.MouseButton.LeftButton)
    assert dialog.capturing and dialog.pose_capture.plan == [("left", 2)] and "to your left" in dialog.prompt.text()
    for photo in LEFT:
        _show(dialog, recognizer, lfw_dir, *photo)
    assert dialog.complete and [s for i, s in enumerate(dialog.samples) if i != row] == others
    assert dialog.sample_poses[row] == "left"

    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert dialog.result() == dialog.DialogCode.Accepted
    assert gallery.person("George W Bush").template_count == 3


def test_pausing_hides_the_instruction_and_resuming_goes_on_where_it_was(qtbot, dialog, recognizer, lfw_dir):
    _show(dialog, recognizer, lfw_dir, *FRONTAL[0])
    qtbot.mouseClick(dialog.capture_button, Qt.MouseButton.LeftButton)
    assert not dialog.capturing and not dialog.prompt.isVisible() and dialog.status.text() == "Capture paused."
    _show(dialog, recognizer, lfw_dir, *FRONTAL[1])  # not taken while paused
    qtbot.mouseClick(dialog.capture_button, Qt.MouseButton.LeftButton)
    assert dialog.prompt.isVisible() and "view 1 of 2" in dialog.status.text()


def test_changing_the_sample_count_during_the_capture_plans_it_again(qtbot, dialog, recognizer, lfw_dir):
    _show(dialog, recognizer, lfw_dir, *FRONTAL[0])
    dialog.count_spin.setValue(6)  # ceil(6 / 3) + 1 = 3 views a pose
    assert dialog.capturing and dialog.pose_capture is not None and dialog.pose_capture.plan[0] == ("frontal", 3)
    assert dialog.prompt.isVisible() and "view 0 of 3" in dialog.status.text()
