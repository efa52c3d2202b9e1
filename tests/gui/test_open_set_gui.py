"""The open-set decision in the desktop app: "Not NAME" on a live face, a person's own
threshold in the gallery dialog (issue 13)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF
from PySide6.QtGui import QContextMenuEvent
from PySide6.QtWidgets import QApplication

from faceapp.gui.dialogs.gallery import GalleryDialog

WAIT_MS = 20_000
GEORGE = ("George_W_Bush_0007.jpg", "George_W_Bush_0016.jpg", "George_W_Bush_0065.jpg")


@pytest.fixture(scope="module")
def jeb_frames(lfw_dir):
    """640x480 frames of Jeb Bush (LFW), the face moving a little from frame to frame."""
    from faceapp.media.imageio import read_image

    photo = read_image(lfw_dir / "images" / "Jeb_Bush_0002.jpg")
    frames = []
    for step in range(8):
        frame = np.full((480, 640, 3), 90, np.uint8)
        top, left = 110 + step, 190 + 2 * step
        frame[top : top + photo.shape[0], left : left + photo.shape[1]] = photo
        frames.append(frame)
    return frames


@pytest.fixture
def george_gallery(gallery, recognizer, lfw_dir):
    from faceapp.recognition.enrollment import samples_from_files

    samples = samples_from_files(recognizer, [lfw_dir / "images" / p for p in GEORGE])
    gallery.add_person("George W Bush", [s.template(recognizer.embedder.model_id) for s in samples])
    return gallery


def _centre(window, face) -> QPointF:
    """The widget position of ``face``'s centre in the live view."""
    rect, scale = window.view._frame_rect()
    x, y, w, h = face.detection.box
    return QPointF(rect.left() + (x + w / 2) * scale, rect.top() + (y + h / 2) * scale)


def test_not_name_on_a_live_look_alike(qtbot, make_window, george_gallery, jeb_frames, camera_factory, asker_factory):
    window = make_window(opener=camera_factory(jeb_frames).open, asker=asker_factory())
    window.open_source_text("0")
    # Before: George's brother is named George.
    qtbot.waitUntil(lambda: window.view.overlay_names() == ["George W Bush"], timeout=WAIT_MS)
    (face,) = window.view.result.faces
    point = _centre(window, face)
    assert window.view.face_at(point) is not None
    assert window.view.face_at(QPointF(2, 2)) is None  # the background is no face
    # A right click on the face opens its menu, offering "Not George W Bush".
    event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, point.toPoint(), window.view.mapToGlobal(point.toPoint()))
    QApplication.sendEvent(window.view, event)
    menu = window.face_menu.menu
    assert menu is not None and [a.text() for a in menu.actions()] == ["Not George W Bush"]
    menu.close()
    # Choosing it stores the face as one of George's negatives, off the GUI thread ...
    job = window.face_menu.mark_not(window.view.result.faces[0], "George W Bush")
    assert job is not None
    qtbot.waitUntil(lambda: george_gallery.person("George W Bush").negative_count == 1, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "not George W Bush" in window.statusBar().currentMessage(), timeout=WAIT_MS)
    # ... and from then on the look-alike is not named George (the track is decided afresh).
    qtbot.waitUntil(lambda: window.view.overlay_names() == ["Unknown"], timeout=WAIT_MS)
    (negative,) = [t for t in george_gallery.templates("George W Bush") if t.kind == "negative"]
    assert negative.source == "live view"


def test_not_name_on_the_person_themselves_asks_first(qtbot, make_window, gallery_with, biden_frames, camera_factory,
                                                       asker_factory):
    gallery = gallery_with("biden")
    asker = asker_factory(confirm=[False])
    window = make_window(opener=camera_factory(biden_frames).open, asker=asker)
    window.open_source_text("0")
    qtbot.waitUntil(lambda: window.view.overlay_names() == ["biden"], timeout=WAIT_MS)
    qtbot.waitUntil(lambda: np.any(window.view.result.faces[0].embedding), timeout=WAIT_MS)
    assert window.face_menu.mark_not(window.view.result.faces[0], "biden") is None  # "no" to the question
    assert "looks like biden themselves" in asker.asked[0][1]
    assert gallery.person("biden").negative_count == 0
    assert window.view.overlay_names() == ["biden"]
    # An unknown face offers nothing.
    window.set_threshold(0.99)
    qtbot.waitUntil(lambda: window.view.overlay_names() == ["Unknown"], timeout=WAIT_MS)
    assert window.face_menu.actions_for(window.view.result.faces[0]) == []
    event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, QPoint(2, 2), window.view.mapToGlobal(QPoint(2, 2)))
    QApplication.sendEvent(window.view, event)  # outside any face: no menu, no error


def test_own_threshold_in_the_gallery_dialog(qtbot, gallery_with, asker_factory, gallery_jobs):
    gallery = gallery_with("obama", "biden")
    # The window offers its model's verification threshold (the fused model's 0.7012, not SFace's scale).
    dialog = GalleryDialog(gallery, asker_factory(), poll_ms=50, jobs=gallery_jobs, offered_threshold=0.7012)
    qtbot.addWidget(dialog)
    dialog.show()
    field = dialog.threshold_field
    assert not field.isEnabled()  # nobody selected
    assert dialog.select("obama")
    assert field.isEnabled() and field.automatic.isChecked() and not field.spin.isEnabled()
    field.automatic.setChecked(False)  # an own threshold: the value shown (the model's) ...
    qtbot.waitUntil(lambda: not dialog.busy and gallery.person("obama").threshold is not None, timeout=WAIT_MS)
    assert gallery.person("obama").threshold == pytest.approx(0.701)
    field.spin.setValue(0.62)
    field.spin.editingFinished.emit()  # ... then typed
    qtbot.waitUntil(lambda: not dialog.busy and gallery.person("obama").threshold == pytest.approx(0.62), timeout=WAIT_MS)
    assert "named only at a similarity of 0.620" in dialog.message.text()
    assert gallery.person("biden").threshold is None
    # Selecting someone else shows theirs; back on obama, his.
    dialog.select("biden")
    assert field.automatic.isChecked()
    dialog.select("obama")
    assert not field.automatic.isChecked() and field.spin.value() == pytest.approx(0.62)
    field.automatic.setChecked(True)
    qtbot.waitUntil(lambda: not dialog.busy and gallery.person("obama").threshold is None, timeout=WAIT_MS)
    assert "automatic threshold again" in dialog.message.text()
