"""The live recognition window, offscreen, on the fixture video and fake cameras."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import QThread

from faceapp.errors import SourceError
from faceapp.gui.main_window import MESSAGE_PAGE, VIDEO_PAGE
from faceapp.gui.settings import AppSettings
from faceapp.gui.workers.capture import SourceState
from faceapp.media.imageio import read_image
from faceapp.media.overlay import KNOWN_COLOUR
from faceapp.media.sources import SourceSpec, open_source

WAIT_MS = 20_000


def names_seen(window) -> set[str]:
    """Collect every name the overlay shows from now on."""
    seen: set[str] = set()
    window.controller.packetReady.connect(lambda _: seen.update(window.view.overlay_names()))
    return seen


def test_live_window_names_the_enrolled_people(qtbot, make_window, gallery_with, fixture_video):
    gallery_with("obama", "biden")
    window = make_window()
    seen = names_seen(window)
    window.open_source_text(str(fixture_video.path))
    qtbot.waitUntil(lambda: {"obama", "biden"} <= seen, timeout=WAIT_MS)
    assert window.pages.currentIndex() == VIDEO_PAGE
    items = [item for item in window.view.overlay if item.known]
    assert all(item.name in item.label and item.label.startswith(f"#{item.track_id} ") for item in items)
    line = window.performance_label.text()
    for part in ("fps", "detect", "align", "embed", "match", window.recognizer.embedder.device_name):
        assert part in line
    assert window.source_label.text().startswith("●")


def test_unknown_faces_are_labelled_unknown(qtbot, make_window, biden_frames, camera_factory):
    window = make_window(opener=camera_factory(biden_frames).open)  # an empty gallery
    window.open_source_text("0")
    qtbot.waitUntil(lambda: window.view.overlay_names() == ["Unknown"], timeout=WAIT_MS)
    assert not window.view.overlay[0].known


def test_no_webcam_says_so_and_offers_the_picker(qtbot, make_window, gallery_with, fixture_video):
    def opener(spec: SourceSpec):
        if spec.kind == "webcam":
            raise SourceError(f"cannot open webcam {spec.value} (is a camera connected?)")
        return open_source(spec)

    gallery_with("obama")
    window = make_window(opener=opener)
    window.open_source_text("0")
    qtbot.waitUntil(lambda: window.pages.currentIndex() == MESSAGE_PAGE, timeout=WAIT_MS)
    assert "Cannot open webcam 0 (is a camera connected?)" in window.message.text()
    assert window.pick_button.isVisible()

    window.pick_button.click()
    picker = window.source_picker
    picker.buttons_by_kind["file"].setChecked(True)
    picker.file_path.setText(str(fixture_video.path))
    picker.accept()
    qtbot.waitUntil(lambda: "obama" in window.view.overlay_names(), timeout=WAIT_MS)
    assert window.pages.currentIndex() == VIDEO_PAGE
    assert window.settings.source == str(fixture_video.path)


def test_the_picker_explains_a_bad_choice(qtbot, make_window, tmp_path):
    window = make_window(opener=lambda spec: [])
    picker = window.open_source_picker()
    picker.buttons_by_kind["folder"].setChecked(True)
    picker.folder_path.setText(str(tmp_path / "missing"))
    picker.accept()
    assert picker.isVisible() and "no such file or folder" in picker.error.text()
    picker.buttons_by_kind["url"].setChecked(True)
    picker.url.setText("camera.local/stream")
    picker.accept()
    assert "rtsp://" in picker.error.text()
    picker.reject()


def test_a_source_failing_mid_run_shows_reconnecting(qtbot, make_window, biden_frames, camera_factory):
    camera = camera_factory(biden_frames, fail_after=8, opens_failing=2)
    window = make_window(opener=camera.open)
    banners = []
    window.controller.statusChanged.connect(lambda status: banners.append(window.view.banner))
    window.open_source_text("0")
    qtbot.waitUntil(lambda: any("reconnecting" in b for b in banners), timeout=WAIT_MS)
    assert window.view.stale or camera.opens >= 4  # the last picture is dimmed while the source is down
    assert window.source_label.text() == "reconnecting…" or camera.opens >= 4
    qtbot.waitUntil(lambda: camera.opens >= 4 and window.controller.status.state is SourceState.LIVE, timeout=WAIT_MS)
    index = window.controller.latest.index if window.controller.latest else -1
    qtbot.waitUntil(lambda: window.controller.latest is not None and window.controller.latest.index > index, timeout=WAIT_MS)
    assert window.view.banner == "" and not window.view.stale


def test_threshold_applies_at_once_and_is_remembered(qtbot, make_window, gallery_with, biden_frames, camera_factory, settings):
    gallery_with("biden")
    window = make_window(opener=camera_factory(biden_frames).open)
    window.open_source_text("0")
    qtbot.waitUntil(lambda: window.view.overlay_names() == ["biden"], timeout=WAIT_MS)
    # The default preset's threshold, calibrated for this one-person gallery, is shown.
    controls = window.decision_controls
    assert controls.combo.currentData() == "balanced"
    assert window.threshold_spin.value() == pytest.approx(window.recognizer.last_threshold, abs=1e-3)
    window.threshold_spin.setValue(0.99)  # typing a value fixes the threshold
    assert window.recognizer.threshold == pytest.approx(0.99)
    assert controls.combo.currentData() == "fixed"
    qtbot.waitUntil(lambda: window.view.overlay_names() == ["Unknown"], timeout=WAIT_MS)
    assert AppSettings.at(settings.location).decision == "0.99"
    # Back to a preset from the combo box: named again, and remembered.
    controls.combo.setCurrentIndex(controls.combo.findData("lenient"))
    controls.combo.activated.emit(controls.combo.currentIndex())
    assert window.recognizer.decision.label == "lenient"
    qtbot.waitUntil(lambda: window.view.overlay_names() == ["biden"], timeout=WAIT_MS)
    assert window.threshold_spin.value() == pytest.approx(window.recognizer.last_threshold, abs=1e-3)
    assert window.recognizer.last_threshold < 0.99
    assert AppSettings.at(settings.location).decision == "lenient"


def test_pause_resume_and_snapshot(qtbot, make_window, gallery_with, biden_frames, camera_factory, settings):
    gallery_with("biden")
    window = make_window(opener=camera_factory(biden_frames).open)
    assert window.snapshot() is None  # nothing shown yet: says so, saves nothing
    window.open_source_text("0")
    qtbot.waitUntil(lambda: window.view.overlay_names() == ["biden"], timeout=WAIT_MS)

    window.pause_action.trigger()
    assert window.controller.paused and window.view.banner == "Paused"
    qtbot.wait(600)  # a frame already in recognition may still arrive
    frozen = window.controller.latest.index
    qtbot.wait(600)
    assert window.controller.latest.index == frozen
    window.pause_action.trigger()
    qtbot.waitUntil(lambda: window.controller.latest.index > frozen, timeout=WAIT_MS)

    path = window.snapshot()
    assert path is not None and path.parent == settings.snapshot_dir and path.suffix == ".png"
    image = read_image(path)
    assert image.shape == biden_frames[0].shape
    # The snapshot carries the overlay: biden's box and label in the "known" colour.
    assert np.all(image == KNOWN_COLOUR, axis=2).sum() > 200


def test_gallery_changes_show_at_once(qtbot, make_window, gallery_with, biden_frames, camera_factory):
    gallery = gallery_with("biden")
    window = make_window(opener=camera_factory(biden_frames).open)
    window.open_source_text("0")
    qtbot.waitUntil(lambda: window.view.overlay_names() == ["biden"], timeout=WAIT_MS)
    gallery.rename("biden", "Joe")
    qtbot.waitUntil(lambda: window.view.overlay_names() == ["Joe"], timeout=WAIT_MS)
    gallery.remove("Joe")
    qtbot.waitUntil(lambda: window.view.overlay_names() == ["Unknown"], timeout=WAIT_MS)


@pytest.mark.parametrize("loop", [False, True])
def test_a_finished_video_stops_or_loops(qtbot, make_window, fixture_video, loop):
    window = make_window(pace_fps=200)
    window.loop_action.setChecked(loop)
    statuses = []
    window.controller.statusChanged.connect(lambda status: statuses.append(status.state))
    window.open_source_text(str(fixture_video.path))
    if loop:
        indexes = []
        window.controller.packetReady.connect(lambda packet: indexes.append(packet.index))
        qtbot.waitUntil(lambda: bool(indexes) and max(indexes) > fixture_video.frame_count + 5, timeout=WAIT_MS)
        assert SourceState.ENDED not in statuses
    else:
        qtbot.waitUntil(lambda: SourceState.ENDED in statuses, timeout=WAIT_MS)
        assert "end of" in window.view.banner
        # The capture thread ends right after it reports the end (never one left behind).
        qtbot.waitUntil(lambda: [t.objectName() for t in window.controller.threads()] == ["faceapp-recognition"],
                        timeout=5_000)
        shown = window.controller.latest
        window.reopen_action.trigger()  # play it again
        qtbot.waitUntil(lambda: window.controller.latest is not None and window.controller.latest is not shown, timeout=WAIT_MS)


def test_closing_the_window_stops_every_thread_within_a_second(qtbot, make_window, gallery_with, biden_frames, camera_factory):
    gallery_with("biden")
    window = make_window(opener=camera_factory(biden_frames).open)
    window.open_source_text("0")
    qtbot.waitUntil(lambda: window.view.overlay_names() == ["biden"], timeout=WAIT_MS)
    window.open_source_text("0")  # a replaced source's thread is stopped too
    threads: list[QThread] = window.controller.threads()
    assert len(threads) >= 2
    start = time.monotonic()
    window.close()
    elapsed = time.monotonic() - start
    assert elapsed < 1.0
    assert not any(thread.isRunning() for thread in threads)
    assert window.controller.threads() == []


def test_a_bad_source_argument_is_explained_in_the_window(make_window, tmp_path):
    window = make_window(opener=lambda spec: [])
    window.open_source_text(str(tmp_path / "missing.mp4"))
    assert window.pages.currentIndex() == MESSAGE_PAGE
    assert "no such file or folder" in window.message.text()
    assert window.pick_button.isVisible() and not window.retry_button.isVisible()
