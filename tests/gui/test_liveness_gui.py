"""The passive liveness check in the desktop app: the optional per-face badge (off by
default, a setting), and webcam enrollment refusing a face that looks like a photo."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceapp.gui.preferences import apply_choice, current_choice
from faceapp.gui.video_view import VideoView, overlay_items
from faceapp.recognition.enrollment import NOT_LIVE, evaluate_frame
from faceapp.types import FrameResult

WAIT_MS = 20_000


def test_the_badge_is_off_by_default_and_a_setting_turns_it_on(qtbot, make_window, gallery_with, fixture_video):
    gallery_with("obama", "biden")
    window = make_window()
    assert not window.controller.liveness_badge and not window.settings.liveness_badge
    scores: list[float] = []
    window.controller.packetReady.connect(lambda packet: scores.extend(
        f.liveness for f in packet.result.faces if f.liveness is not None))
    window.open_source_text(str(fixture_video.path))
    qtbot.waitUntil(lambda: bool(window.view.overlay), timeout=WAIT_MS)
    assert not scores and all(item.liveness is None for item in window.view.overlay)
    apply_choice(window, current_choice(window).__class__(**{**current_choice(window).__dict__, "liveness_badge": True}))
    assert window.controller.liveness_badge and window.settings.liveness_badge
    qtbot.waitUntil(lambda: len(scores) >= 3, timeout=WAIT_MS)
    assert all(0.0 <= s <= 1.0 for s in scores)
    qtbot.waitUntil(lambda: any(item.liveness is not None for item in window.view.overlay), timeout=WAIT_MS)


def test_the_badge_is_drawn_under_the_box(qtbot, recognizer, fixtures_dir):
    image = cv2.imread(str(fixtures_dir / "obama" / "obama_1.jpg"))
    result = recognizer.process(image).with_liveness([0.97])
    view = VideoView()
    qtbot.addWidget(view)
    view.resize(image.shape[1], image.shape[0])
    from faceapp.gui.images import qimage_from_bgr

    view.show_frame(qimage_from_bgr(image), result)
    assert overlay_items(result)[0].liveness == pytest.approx(0.97)
    shot = view.grab().toImage()
    x, y, _, h = (round(v) for v in result.faces[0].detection.box)
    scale = min(view.width() / image.shape[1], view.height() / image.shape[0])
    offset_x = (view.width() - image.shape[1] * scale) / 2
    offset_y = (view.height() - image.shape[0] * scale) / 2
    below = shot.pixelColor(round(offset_x + (x + 4) * scale), round(offset_y + (y + h) * scale + 6))
    assert below.green() > 120 and below.red() < 120  # the green "live" badge


def test_webcam_enrollment_refuses_a_spoof_and_accepts_a_live_face(recognizer, minifasnet_samples):
    from faceapp.vision.liveness import LivenessChecker

    checker = LivenessChecker(device="cpu")
    for name, live in (("image_T1.jpg", True), ("image_F2.jpg", False)):
        image = cv2.imread(str(minifasnet_samples / name))
        result = recognizer.process(image)
        plain = evaluate_frame(result)
        checked = evaluate_frame(result, image=image, liveness=checker)
        assert isinstance(result, FrameResult) and len(result.faces) == 1
        if live:
            assert checked.ok == plain.ok
        else:
            assert not checked.ok and NOT_LIVE in checked.problem, (plain.problem, checked.problem)
    assert np.isfinite(checker.threshold)


def test_a_face_not_judged_yet_is_grey_and_says_poor_view(qtbot, recognizer, fixtures_dir):
    import dataclasses

    from faceapp.gui.images import qimage_from_bgr
    from faceapp.gui.video_view import PENDING

    image = cv2.imread(str(fixtures_dir / "obama" / "obama_1.jpg"))
    result = recognizer.process(image)
    result = dataclasses.replace(result, faces=tuple(dataclasses.replace(f, judged=False) for f in result.faces))
    view = VideoView()
    qtbot.addWidget(view)
    view.resize(image.shape[1], image.shape[0])
    view.show_frame(qimage_from_bgr(image), result)
    assert view.overlay_names() == ["poor view"] and not overlay_items(result)[0].judged
    shot = view.grab().toImage()
    x, y, _, h = result.faces[0].detection.box
    scale = min(view.width() / image.shape[1], view.height() / image.shape[0])
    offset_x = (view.width() - image.shape[1] * scale) / 2
    offset_y = (view.height() - image.shape[0] * scale) / 2
    edge = shot.pixelColor(round(offset_x + x * scale), round(offset_y + (y + h / 2) * scale))
    # Grey, not the red of "Unknown" (the antialiased edge blends a little with the photo).
    assert all(abs(a - b) <= 15 for a, b in zip((edge.red(), edge.green(), edge.blue()), (PENDING.red(), PENDING.green(), PENDING.blue())))
