"""Webcam enrollment ends with the head-turn liveness check: Save waits for it; a still
photo fails it; a head that turns as asked (real LFW photos, one mirrored) passes it."""

from __future__ import annotations

import cv2
import pytest
from PySide6.QtCore import Qt

from faceapp.gui.images import qimage_from_bgr
from faceapp.gui.workers.recognition import FramePacket
from faceapp.recognition.challenge import ChallengeConfig, HeadTurnChallenge
from faceapp.recognition.enrollment import evaluate_frame

WAIT_MS = 20_000
FRONTAL = ("George_W_Bush_0065.jpg", "George_W_Bush_0007.jpg", "George_W_Bush_0247.jpg")
TURNED_RIGHT = ("George_W_Bush_0238.jpg", "George_W_Bush_0145.jpg")


def _packet(recognizer, image, index: int) -> FramePacket:
    result = recognizer.process(image)
    return FramePacket(image, qimage_from_bgr(image), result, index, 0, 10.0, 1.0, 0, evaluate_frame(result))


@pytest.fixture
def dialog(qtbot, make_window, gallery_with, biden_frames, camera_factory, settings):
    gallery_with("obama")
    settings.enroll_challenge = True
    window = make_window(opener=camera_factory(biden_frames).open, enroll_interval_s=0.05)
    window.open_source_text("0")
    dialog = window.open_enroll_dialog()
    dialog.count_spin.setValue(3)
    qtbot.keyClicks(dialog.name_edit, "Joe Biden")
    qtbot.mouseClick(dialog.capture_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.complete, timeout=WAIT_MS)
    return dialog


def test_save_waits_for_the_check_and_a_still_photo_fails_it(qtbot, dialog):
    assert dialog.challenge is not None and dialog.prompt.isVisible()
    assert not dialog.save_button.isEnabled() and not dialog.capture_button.isEnabled()
    dialog.challenge = HeadTurnChallenge(ChallengeConfig(time_limit_s=0.5), order=("left", "right"))
    qtbot.waitUntil(lambda: dialog.challenge is None, timeout=WAIT_MS)  # the fake camera's photo never turns
    assert "Liveness check failed" in dialog.status.text() and "did not turn left" in dialog.status.text()
    assert not dialog.save_button.isEnabled() and dialog.capture_button.text() == "Check again"
    dialog.save()
    assert "has not passed" in dialog.status.text() and dialog.result() != dialog.DialogCode.Accepted


def _turning(lfw_dir):
    photos = {n: cv2.imread(str(lfw_dir / "images" / n)) for n in (*FRONTAL, *TURNED_RIGHT)}
    frontal = [photos[n] for n in FRONTAL]
    return frontal + [photos[n] for n in TURNED_RIGHT] + frontal + [cv2.flip(photos[n], 1) for n in TURNED_RIGHT]


def test_someone_else_doing_the_turns_fails_the_check(qtbot, dialog, recognizer, lfw_dir):
    dialog._controller.blockSignals(True)  # the frames below stand for the camera's
    dialog.challenge = HeadTurnChallenge(order=("right", "left"))  # the samples are Biden's; Bush turns
    for index, frame in enumerate(_turning(lfw_dir)[:4]):
        dialog.on_packet(_packet(recognizer, frame, index))
    dialog._controller.blockSignals(False)
    assert not dialog.live_checked and "not the one in the samples" in dialog.status.text()


def test_a_head_turning_as_asked_passes_and_save_works(qtbot, dialog, recognizer, lfw_dir, gallery_with):
    from faceapp.recognition.enrollment import samples_from_files

    dialog._controller.blockSignals(True)  # the frames below stand for the camera's
    dialog.samples = samples_from_files(recognizer, [lfw_dir / "images" / n for n in FRONTAL])  # Bush's samples
    dialog.challenge = HeadTurnChallenge(order=("right", "left"))
    photos = {n: cv2.imread(str(lfw_dir / "images" / n)) for n in (*FRONTAL, *TURNED_RIGHT)}
    frontal = [photos[n] for n in FRONTAL]
    frames = frontal + [photos[n] for n in TURNED_RIGHT] + frontal + [cv2.flip(photos[n], 1) for n in TURNED_RIGHT]
    prompts = []
    for index, frame in enumerate(frames):
        dialog.on_packet(_packet(recognizer, frame, index))
        prompts.append(dialog.prompt.text())
    assert any("right" in p for p in prompts) and any("left" in p for p in prompts)
    assert dialog.live_checked and dialog.challenge is None and "passed" in dialog.status.text()
    assert dialog.save_button.isEnabled()
    dialog._controller.blockSignals(False)
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert dialog.result() == dialog.DialogCode.Accepted and dialog.saved is not None
